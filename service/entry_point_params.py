"""An entry-point job's or sweep's params checked against a registered definition,
before anything is written: each problem located in the request (`["params", NAME]`,
`["base", NAME]`, `["grid", NAME, INDEX]`) and saying what the param takes.

Pure: the definition comes in, the full param sets (defaults filled in) come out.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from momentum.contract import EntryPointDefinition, GridError, ParamErrors, grid_size
from momentum.contract.entry_points import ParamSpec, ParamValue

MAX_REPORTED_PROBLEMS = 20


class ParamsRefused(ValueError):
    """Params the definition does not take; `items` are the contract's detail items."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items[:MAX_REPORTED_PROBLEMS]
        first = self.items[0]
        where = ".".join(str(part) for part in first["loc"])
        more = f" (and {len(items) - 1} more)" if len(items) > 1 else ""
        super().__init__(f"invalid params: {where}: {first['msg']}{more}")


def takes(spec: ParamSpec) -> str:
    """What a param takes, in words: `a float from 0.0 to 1.0, default 0.9`."""
    kind = {"float": "a float", "int": "an int", "str": "a string", "bool": "true or false"}
    said = f"one of {spec.choices}" if spec.choices is not None else kind[spec.type]
    if spec.min is not None and spec.max is not None:
        said += f" from {spec.min} to {spec.max}"
    elif spec.min is not None:
        said += f" of at least {spec.min}"
    elif spec.max is not None:
        said += f" of at most {spec.max}"
    return said + (f", default {spec.default!r}" if spec.default is not None else ", required")


def _problem(loc: list[Any], msg: str, kind: str = "value_error") -> dict[str, Any]:
    return {"loc": loc, "msg": msg, "type": kind}


def _unknown(definition: EntryPointDefinition) -> str:
    return f"unknown param; this entry point takes {sorted(definition.params)}"


def job_params(
    definition: EntryPointDefinition, given: Mapping[str, object]
) -> dict[str, ParamValue]:
    """The full params of a job: `given` checked, defaults filled in; ParamsRefused."""
    try:
        return definition.resolve(dict(given))
    except ParamErrors as exc:
        items = []
        for name, why in exc.errors.items():
            spec = definition.params.get(name)
            msg = f"{why} (takes {takes(spec)})" if spec is not None else why
            items.append(_problem(["params", name], msg))
        raise ParamsRefused(items) from None


def sweep_params(
    definition: EntryPointDefinition,
    base: Mapping[str, object],
    grid: Mapping[str, Sequence[object]],
    max_size: int,
) -> list[tuple[dict[str, Any], dict[str, ParamValue]]]:
    """Every combination as (the grid values it picked, its full params); GridError."""
    _check_names_and_size(definition, base, grid, max_size)
    fixed, problems = _checked_base(definition, base, grid)
    checked: dict[str, list[ParamValue]] = {}
    for name, values in grid.items():
        spec = definition.params[name]
        checked[name] = []
        for index, value in enumerate(values):
            try:
                checked[name].append(spec.check(value))
            except ValueError as exc:
                problems.append(_problem(["grid", name, index], f"{exc} (takes {takes(spec)})"))
    if problems:
        raise GridError(problems)
    names = list(grid)
    out = []
    for picked_values in itertools.product(*(checked[name] for name in names)):
        picked = dict(zip(names, picked_values, strict=True))
        merged = {**fixed, **picked}
        out.append((picked, {name: merged[name] for name in definition.params}))
    return out


def _check_names_and_size(
    definition: EntryPointDefinition,
    base: Mapping[str, object],
    grid: Mapping[str, Sequence[object]],
    max_size: int,
) -> None:
    unknown = [_problem(["base", name], _unknown(definition), "extra_forbidden") for name in base]
    unknown += [_problem(["grid", name], _unknown(definition), "extra_forbidden") for name in grid]
    unknown = [item for item in unknown if item["loc"][1] not in definition.params]
    if unknown:
        raise GridError(unknown)
    size = grid_size(grid)
    if size > max_size:
        msg = f"the grid has {size} combinations; the cap is {max_size} (MOMENTUM_MAX_GRID_SIZE)"
        raise GridError([_problem(["grid"], msg, "too_large")])


def _checked_base(
    definition: EntryPointDefinition,
    base: Mapping[str, object],
    grid: Mapping[str, Sequence[object]],
) -> tuple[dict[str, ParamValue], list[dict[str, Any]]]:
    """Defaults overlaid with the checked base values; problems with base or missing."""
    fixed: dict[str, ParamValue] = {}
    problems = []
    for name, spec in definition.params.items():
        if name in base:
            try:
                fixed[name] = spec.check(base[name])
            except ValueError as exc:
                problems.append(_problem(["base", name], f"{exc} (takes {takes(spec)})"))
        elif spec.default is not None:
            fixed[name] = spec.default
        elif name not in grid:
            msg = "required: it has no default; give it in base or grid"
            problems.append(_problem(["base", name], msg, "missing"))
    return fixed, problems
