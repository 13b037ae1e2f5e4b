"""The adaptive-search options of `momentum sweep`, read into the request's fields.

`--space NAME=LOW:HIGH[:log][:int]` or `NAME=choice:A,B,...` becomes one entry of
`"space"`; `--objective KEY[:min|max[:final|best|tail_mean]]` becomes `"objective"`;
`--early-stop asha|median` with `--min-step` and `--reduction-factor` (both rules judge
at rungs MIN_STEP * N^k) becomes `"early_stop"`, judged on the objective's key and
mode. A malformed spec is a usage error naming the option; whether a range suits a
field or a param is the service's call (its 422 names `space.NAME`), except what the
spec itself makes plain (low >= high, a log range reaching 0, a float range over an int
field).
"""

from __future__ import annotations

import math
import re
from typing import Any

import click

from momentum.cli_entry_points import parse_value

STRATEGIES = ("grid", "random", "tpe")
RULES = ("asha", "median")
MODES = ("min", "max")
SUMMARIES = ("final", "best", "tail_mean")
FLAGS = frozenset({"log", "int", "float"})
# Keys that grow as training goes well: their objective is maximised unless told.
MAXIMISED = re.compile(r"acc(uracy)?$")
METRIC_KEY = re.compile(r"[A-Za-z0-9_\-./ ]{1,250}")


def _bad(option: str, message: str) -> click.BadParameter:
    return click.BadParameter(message, param_hint=option)


def parse_space(
    specs: tuple[str, ...], field_types: dict[str, Any] | None
) -> dict[str, dict[str, Any]]:
    """Each `--space` spec as the contract's dimension. `field_types` maps the built-in
    trainer's fields to their annotations (an int field samples ints; a field with a
    fixed set of values takes `choice:`); None for an entry point's params."""
    space: dict[str, dict[str, Any]] = {}
    for spec in specs:
        name, sep, text = spec.partition("=")
        name = name.strip()
        if field_types is not None:
            name = name.replace("-", "_")
        if not sep or not name or not text.strip():
            raise _bad("--space", f"{spec!r} is not NAME=LOW:HIGH[:log][:int] or NAME=choice:A,B")
        if name in space:
            raise _bad("--space", f"{name!r} is given twice")
        annotation = _annotation(name, field_types)
        if text.strip().startswith("choice:"):
            space[name] = _choice(name, text.strip().removeprefix("choice:"), annotation)
        else:
            space[name] = _range(name, text.strip(), annotation)
    return space


def _annotation(name: str, field_types: dict[str, Any] | None) -> Any:
    if field_types is None:
        return None
    if name not in field_types:
        known = ", ".join(field_types)
        raise _bad("--space", f"unknown field {name!r}; known: {known}")
    return field_types[name]


def _choice(name: str, text: str, annotation: Any) -> dict[str, Any]:
    values = [value.strip() for value in text.split(",")]
    if not all(values):
        raise _bad("--space", f"{name}: choice:A,B,... needs values between the commas")
    if annotation is None:
        choices: list[Any] = [parse_value(value) for value in values]
    else:
        from pydantic import TypeAdapter, ValidationError

        adapter: TypeAdapter[Any] = TypeAdapter(annotation)
        try:
            choices = [adapter.validate_strings(value) for value in values]
        except ValidationError as exc:
            message = exc.errors(include_url=False)[0]["msg"]
            raise _bad("--space", f"{name}: {message}") from None
    if len(set(map(repr, choices))) != len(choices):
        raise _bad("--space", f"{name}: a choice is repeated")
    return {"type": "choice", "choices": choices}


def _range(name: str, text: str, annotation: Any) -> dict[str, Any]:
    low_text, _, rest = text.partition(":")
    high_text, _, flag_text = rest.partition(":")
    flags = [flag.strip() for flag in flag_text.split(":")] if flag_text else []
    unknown = [flag for flag in flags if flag not in FLAGS]
    if not high_text or unknown:
        raise _bad("--space", f"{name}: {text!r} is not LOW:HIGH[:log][:int]")
    low, high = _number(name, low_text), _number(name, high_text)
    kind = _range_type(name, flags, annotation)
    if kind == "int" and not (low.is_integer() and high.is_integer()):
        raise _bad("--space", f"{name}: an int range needs whole bounds, not {text!r}")
    if low >= high:
        raise _bad("--space", f"{name}: LOW must be below HIGH, got {text!r}")
    if "log" in flags and low <= 0:
        raise _bad("--space", f"{name}: a log range must stay above 0, got {text!r}")
    bounds: tuple[float, float] | tuple[int, int] = (low, high)
    if kind == "int":
        bounds = (int(low), int(high))
    return {"type": kind, "low": bounds[0], "high": bounds[1], "log": "log" in flags}


def _number(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _bad("--space", f"{name}: {text.strip()!r} is not a number") from None
    if not math.isfinite(value):
        raise _bad("--space", f"{name}: bounds must be finite, got {text.strip()!r}")
    return value


def _range_type(name: str, flags: list[str], annotation: Any) -> str:
    """int or float: as the flag says, else as the built-in field is (float for params)."""
    if "int" in flags and "float" in flags:
        raise _bad("--space", f"{name}: int or float, not both")
    if annotation is not None and annotation not in (int, float):
        raise _bad("--space", f"{name} takes one of a set of values: {name}=choice:A,B,...")
    if annotation is int:
        if "float" in flags:
            raise _bad("--space", f"{name} is an int field: a float range does not fit it")
        return "int"
    if annotation is float and "int" in flags:
        raise _bad("--space", f"{name} is a float field: drop ':int'")
    return "int" if "int" in flags else "float"


def parse_objective(spec: str) -> dict[str, str]:
    """`val_loss` → {"key": "val_loss", "mode": "min"}; `val_accuracy` is maximised
    unless told; `val_loss:min:best` names the summary too."""
    parts = spec.split(":")
    if len(parts) > 3:
        raise _bad("--objective", f"{spec!r} is not KEY[:min|max[:final|best|tail_mean]]")
    key = parts[0].strip()
    if not METRIC_KEY.fullmatch(key):
        raise _bad("--objective", f"{key!r} is not a metric key")
    mode = parts[1].strip() if len(parts) > 1 and parts[1].strip() else _default_mode(key)
    if mode not in MODES:
        raise _bad("--objective", f"mode {mode!r}: use min or max")
    objective = {"key": key, "mode": mode}
    if len(parts) == 3:
        summary = parts[2].strip()
        if summary not in SUMMARIES:
            raise _bad("--objective", f"summary {summary!r}: use one of {', '.join(SUMMARIES)}")
        objective["summary"] = summary
    return objective


def _default_mode(key: str) -> str:
    return "max" if MAXIMISED.search(key) else "min"


def early_stop_body(
    rule: str | None,
    objective: dict[str, str] | None,
    min_step: int | None,
    reduction_factor: int | None,
) -> dict[str, Any] | None:
    """`"early_stop"` for `--early-stop RULE`, judged on the objective's key and mode
    (the service's default objective when none is given)."""
    if rule is None:
        given = [
            option
            for option, value in (
                ("--min-step", min_step),
                ("--reduction-factor", reduction_factor),
            )
            if value is not None
        ]
        if given:
            raise click.UsageError(f"{', '.join(given)} go with --early-stop asha|median")
        return None
    body: dict[str, Any] = {"rule": rule}
    if objective is not None:
        body.update(key=objective["key"], mode=objective["mode"])
    if min_step is not None:
        body["min_step"] = min_step
    if reduction_factor is not None:
        body["reduction_factor"] = reduction_factor
    return body


def search_fields(
    strategy: str,
    space: dict[str, dict[str, Any]],
    grid: dict[str, list[Any]],
    max_jobs: int | None,
    parallelism: int | None,
) -> dict[str, Any]:
    """The strategy's fields of the request, after the checks that need no service:
    a grid sweep takes no space, a search needs a space and a budget."""
    if strategy == "grid":
        if space:
            raise click.UsageError("--space goes with --strategy random or tpe")
        if not grid:
            raise click.UsageError("a grid sweep needs --grid FIELD=V1,V2,...")
        if max_jobs is not None:
            raise click.UsageError(
                "a grid's budget is its size: --max-jobs goes with random or tpe"
            )
        return {"grid": grid} if parallelism is None else {"grid": grid, "parallelism": parallelism}
    if not space:
        raise click.UsageError(f"--strategy {strategy} needs --space NAME=LOW:HIGH (repeatable)")
    if max_jobs is None:
        raise click.UsageError(f"--strategy {strategy} needs --max-jobs N (the budget)")
    fields: dict[str, Any] = {"strategy": strategy, "space": space, "max_jobs": max_jobs}
    if grid:
        fields["grid"] = grid
    if parallelism is not None:
        fields["parallelism"] = parallelism
    return fields
