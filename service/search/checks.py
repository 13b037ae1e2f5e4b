"""A search request checked before anything is written: the space over known fields (or
params) and within what each takes, the budget against the cap and the grid, the
objective's and early stop's keys. Each problem names its field (`["space", NAME]`,
`["max_jobs"]`, `["objective", "key"]`), as grids' problems do.

Pure: the request and the entry point's definition (None for the built-in trainer) in,
problems out. A combination that only some sampled points break (a cnn on ravine) is
not refused here: such a point is told back to the sampler as failed when sampled.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from momentum.contract import EntryPointDefinition, SpaceParam, SweepCreate, TrainingConfig
from momentum.contract.search import DEFAULT_PARALLELISM
from momentum.contract.training import TRAINING_KEYS

Problem = dict[str, Any]


def _problem(loc: list[Any], msg: str, kind: str = "value_error") -> Problem:
    return {"loc": loc, "msg": msg, "type": kind}


def probes(spec: SpaceParam) -> list[Any]:
    """Values that stand for the whole dimension: its ends and middle, or every choice."""
    if spec.type == "choice":
        return list(spec.choices or [])
    assert spec.low is not None and spec.high is not None
    middle = (spec.low * spec.high) ** 0.5 if spec.log else (spec.low + spec.high) / 2
    if spec.type == "int":
        return [int(spec.low), int(round(middle)), int(spec.high)]
    return [spec.low, middle, spec.high]


def probe_point(space: dict[str, SpaceParam]) -> dict[str, Any]:
    """One point of the space (each dimension's first probe), to check the rest with."""
    return {name: probes(spec)[0] for name, spec in space.items()}


def space_problems(body: SweepCreate, definition: EntryPointDefinition | None) -> list[Problem]:
    space = body.space or {}
    known = set(definition.params) if definition is not None else set(TrainingConfig.model_fields)
    problems = []
    for name, spec in space.items():
        if name not in known:
            what = "param of this entry point" if definition is not None else "TrainingConfig field"
            msg = f"not a {what}; known: {', '.join(sorted(known))}"
            problems.append(_problem(["space", name], msg, "extra_forbidden"))
        elif name in body.grid or name in body.base:
            where = "grid" if name in body.grid else "base"
            problems.append(_problem(["space", name], f"also given in {where}: give it once"))
        else:
            problems += _probe_problems(name, spec, body, definition)
    return problems


def _probe_problems(
    name: str, spec: SpaceParam, body: SweepCreate, definition: EntryPointDefinition | None
) -> list[Problem]:
    for value in probes(spec):
        why = _refusal(name, value, body, definition)
        if why is not None:
            return [_problem(["space", name], f"{value!r} is not a valid {name}: {why}")]
    return []


def _refusal(
    name: str, value: Any, body: SweepCreate, definition: EntryPointDefinition | None
) -> str | None:
    if definition is not None:
        try:
            definition.params[name].check(value)
        except ValueError as exc:
            return str(exc)
        return None
    try:
        TrainingConfig.model_validate({**body.base, name: value})
    except ValidationError as exc:
        mine = [e for e in exc.errors(include_url=False) if e["loc"][:1] == (name,)]
        return str(mine[0]["msg"]) if mine else None
    return None


def budget_problems(body: SweepCreate, copies: int, max_size: int) -> list[Problem]:
    """max_jobs within the cap and a whole number of samples; parallelism fits a sample."""
    if body.strategy == "grid" or body.max_jobs is None:
        return []
    cap = "MOMENTUM_MAX_GRID_SIZE"
    if body.max_jobs > max_size:
        msg = f"max_jobs {body.max_jobs} is over the cap of {max_size} ({cap})"
        return [_problem(["max_jobs"], msg, "too_large")]
    problems = []
    if body.max_jobs % copies:
        msg = f"each sample runs the grid's {copies} combinations: give a multiple of {copies}"
        problems.append(_problem(["max_jobs"], msg))
    parallelism = body.parallelism or DEFAULT_PARALLELISM
    if parallelism < copies:
        msg = f"a sample's {copies} grid combinations are queued together: give at least {copies}"
        problems.append(_problem(["parallelism"], msg))
    return problems


def key_problems(body: SweepCreate, definition: EntryPointDefinition | None) -> list[Problem]:
    """The built-in trainer logs known keys only: an objective on another never resolves."""
    if definition is not None:
        return []
    keys = ", ".join(TRAINING_KEYS)
    problems = []
    if body.objective.key not in TRAINING_KEYS:
        msg = f"the built-in trainer logs no {body.objective.key!r}; it logs {keys}"
        problems.append(_problem(["objective", "key"], msg))
    stop_key = body.early_stop.key if body.early_stop is not None else None
    if stop_key is not None and stop_key not in TRAINING_KEYS:
        msg = f"the built-in trainer logs no {stop_key!r}; it logs {keys}"
        problems.append(_problem(["early_stop", "key"], msg))
    return problems
