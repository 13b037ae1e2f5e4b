"""Entry points in the CLI: `momentum entry-points`, and the `--entry-point`/`--param`
options `submit` and `sweep` take to queue the user's own code instead of the built-in
trainer.

A `--param`/`--grid` value is read as JSON when it parses as a JSON number, bool or
string (`0.9`, `true`, `1e-3`), else taken as the text given (`mlp`). The CLI does not
check params against the definition: the service does, fills in the defaults, and
answers a 422 naming the param at fault.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from momentum.cli_common import F, api, connection_options, print_table

if TYPE_CHECKING:
    from momentum.contract import EntryPointPublic, JobPublic, ParamSpec

ParamValue = bool | int | float | str


def entry_point_options(command: F) -> F:
    """`--entry-point NAME` and `--param NAME=VALUE` (repeatable)."""
    command = click.option(
        "--param",
        "params",
        multiple=True,
        help="NAME=VALUE of the entry point's params; repeatable.",
    )(command)
    return click.option(
        "--entry-point",
        help="Queue this registered entry point (`momentum entry-points`) with --param "
        "values instead of the built-in trainer.",
    )(command)


def parse_value(text: str) -> ParamValue:
    """`0.9` → 0.9, `true` → True, `3` → 3, `"x"` → "x"; anything else is the text."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, bool | int | float | str) else text


def parse_params(specs: tuple[str, ...]) -> dict[str, ParamValue]:
    """`--param momentum=0.9 --param arch=cnn` → {"momentum": 0.9, "arch": "cnn"}."""
    params: dict[str, ParamValue] = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"{spec!r} is not NAME=VALUE", param_hint="--param")
        params[name.strip()] = parse_value(value.strip())
    return params


def parse_param_grid(specs: tuple[str, ...]) -> dict[str, list[ParamValue]]:
    """`--grid momentum=0,0.5,0.9` → {"momentum": [0, 0.5, 0.9]} (values as for --param)."""
    grid: dict[str, list[ParamValue]] = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        if not sep or not values or not name.strip():
            raise click.BadParameter(f"{spec!r} is not NAME=V1,V2,...", param_hint="--grid")
        grid[name.strip()] = [parse_value(value.strip()) for value in values.split(",")]
    return grid


def check_one_kind(
    entry_point: str | None, params: tuple[str, ...], fields: dict[str, Any]
) -> None:
    """Training options go with the built-in trainer, `--param` with an entry point."""
    given = [name for name, value in fields.items() if value is not None]
    if entry_point is not None and given:
        options = ", ".join("--" + name.replace("_", "-") for name in given)
        raise click.UsageError(
            f"{options}: training options are the built-in trainer's; give an entry "
            "point's values as --param NAME=VALUE"
        )
    if entry_point is None and params:
        raise click.UsageError("--param goes with --entry-point NAME")


def describe_entry_job(job: JobPublic) -> str:
    params = " ".join(f"{name}={value}" for name, value in (job.params or {}).items())
    return f"{job.entry_point} {params}".rstrip()


def describe_spec(spec: ParamSpec) -> str:
    """`float [0.0, 1.0] = 0.9`, `str in [mlp, cnn] = mlp`, `int required`, `log`."""
    parts: list[str] = [spec.type]
    if spec.choices is not None:
        parts.append("in [" + ", ".join(str(choice) for choice in spec.choices) + "]")
    if spec.min is not None or spec.max is not None:
        low = "-inf" if spec.min is None else f"{spec.min:g}"
        high = "inf" if spec.max is None else f"{spec.max:g}"
        parts.append(f"[{low}, {high}]")
    if spec.log:
        parts.append("log")
    parts.append("required" if spec.default is None else f"= {json.dumps(spec.default)}")
    return " ".join(parts)


def _row(entry: EntryPointPublic) -> list[str]:
    from rich.markup import escape  # `[mlp, cnn]` is text, not a style

    params = "\n".join(f"{name}: {describe_spec(spec)}" for name, spec in entry.params.items())
    cells = [
        entry.name,
        entry.digest[:12],
        " ".join(entry.command),
        params or "-",
        _or_dash(entry.total_param),
        ", ".join(entry.workers) or "-",
    ]
    return [escape(cell) for cell in cells]


def _or_dash(value: str | None) -> str:
    return "-" if value is None else value


@click.command("entry-points")
@connection_options
def entry_points(url: str | None, token: str | None) -> None:
    """List the registered entry points: params (type, range, default) and workers."""
    with api(url, token) as client:
        listed = client.list_entry_points()
    columns = ["name", "digest", "command", "params", "total", "workers"]
    print_table(
        f"entry points ({len(listed)})",
        columns,
        [_row(entry) for entry in listed],
        wrapping=frozenset({"command", "params", "workers"}),
    )
