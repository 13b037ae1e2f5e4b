"""Sweeps: one job per combination of a grid over any `TrainingConfig` field.

`expand_grid` is pure so the service, the CLI and tests expand a grid the same way:
every combination is validated through `TrainingConfig`, and a problem is reported with
a `loc` that points into the request (`["grid", "momentum", 2]`, `["base", "lr"]`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Hashable, Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, JsonValue, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from momentum.contract.common import ContractModel, Name, Status, StorableJsonValue
from momentum.contract.entry_points import EntryPointName
from momentum.contract.jobs import MaxAttempts
from momentum.contract.runs import Tags
from momentum.contract.search import (
    DEFAULT_PARALLELISM,
    EarlyStop,
    Objective,
    Rung,
    SpaceParam,
    Strategy,
    SweepBest,
)
from momentum.contract.training import TrainingConfig

# Fields whose combinations TrainingConfig checks; a combination error is blamed on the
# grid when the grid varies one of them, else on the base.
COMBINATION_FIELDS = frozenset({"framework", "optimizer", "dataset", "model"})
MAX_REPORTED_PROBLEMS = 20


class SweepCreate(ContractModel):
    name: Name
    entry_point: EntryPointName | None = Field(
        default=None,
        description="A registered entry point: `base` and `grid` are then its params; "
        "without it, TrainingConfig fields of the built-in trainer.",
    )
    base: dict[str, StorableJsonValue] = Field(
        default_factory=dict, description="Fields (or params) shared by every job."
    )
    grid: dict[str, list[StorableJsonValue]] = Field(
        default_factory=dict,
        description="Field (or param) -> values; one job per combination. With random or "
        "tpe, each sampled point is crossed with it (e.g. seeds).",
        examples=[{"momentum": [0.0, 0.5, 0.9, 0.99], "seed": [0, 1]}],
    )
    project: Name = Field(default="default", description="The project of the sweep's runs.")
    tags: Tags = Field(default_factory=dict, description="Tags of every run of the sweep.")
    max_attempts: MaxAttempts = None
    strategy: Strategy = Field(
        default="grid", description="grid (every combination), random or tpe."
    )
    space: dict[str, SpaceParam] | None = Field(
        default=None,
        description="random and tpe: field (or param) -> its range or choices.",
        examples=[
            {
                "momentum": {"type": "float", "low": 0.0, "high": 0.99},
                "lr": {"type": "float", "low": 1e-3, "high": 1.0, "log": True},
            }
        ],
    )
    max_jobs: int | None = Field(
        default=None,
        strict=True,
        ge=1,
        description="random and tpe: the budget, in jobs (a multiple of the grid's size); "
        "capped by MOMENTUM_MAX_GRID_SIZE.",
    )
    parallelism: int | None = Field(
        default=None,
        strict=True,
        ge=1,
        le=10_000,
        description=f"Jobs queued or running at once (default {DEFAULT_PARALLELISM} for random "
        "and tpe; a grid queues every job unless given).",
    )
    objective: Objective = Field(
        default_factory=Objective, description="What the sweep optimizes and reports as best."
    )
    early_stop: EarlyStop | None = Field(default=None, description="Stop losing runs at rungs.")
    search_seed: int | None = Field(
        default=None,
        strict=True,
        ge=0,
        le=2**31 - 1,
        description="Seeds the sampler (default: the sweep's id), so a sweep can be replayed.",
    )

    @model_validator(mode="after")
    def _search_fields_fit_strategy(self) -> SweepCreate:
        if self.strategy == "grid":
            if "grid" not in self.model_fields_set:
                raise _field_error("grid", "a grid sweep needs a grid", "missing")
            if self.space is not None:
                raise _field_error("space", "only random and tpe take a space")
            if self.max_jobs is not None:
                raise _field_error("max_jobs", "a grid's budget is its size; drop max_jobs")
            return self
        if not self.space:
            raise _field_error("space", f"{self.strategy} needs a non-empty space")
        if self.max_jobs is None:
            raise _field_error("max_jobs", f"{self.strategy} needs a budget (max_jobs)")
        return self

    @field_validator("grid")
    @classmethod
    def _values_present_and_distinct(
        cls, grid: dict[str, list[JsonValue]]
    ) -> dict[str, list[JsonValue]]:
        for name, values in grid.items():
            if not values:
                raise ValueError(f"grid field {name!r} has no values")
            # A set, not a list: 40,000 values compared pairwise took seconds.
            seen: set[Hashable] = set()
            for value in values:
                key = _hashable(value)
                if key in seen:
                    raise ValueError(f"grid field {name!r} repeats the value {value!r}")
                seen.add(key)
        return grid


def _field_error(name: str, msg: str, kind: str = "value_error") -> ValidationError:
    """A validation error located at the request's field `name` (not at the body)."""
    error: Any = {"type": kind, "loc": (name,), "ctx": {"error": msg}, "input": None}
    if kind != "value_error":
        error = {"type": PydanticCustomError(kind, msg), "loc": (name,), "input": None}
    return ValidationError.from_exception_data("SweepCreate", [error])


def _hashable(value: JsonValue) -> Hashable:
    """A key equal for equal JSON values, as `==` judges them (0 == 0.0; a dict's order
    does not count, a list's does)."""
    if isinstance(value, dict):
        return ("object", frozenset((name, _hashable(item)) for name, item in value.items()))
    if isinstance(value, list):
        return ("array", tuple(_hashable(item) for item in value))
    return value


class SweepPublic(BaseModel):
    id: int
    name: str
    entry_point: str | None = None
    base: dict[str, JsonValue]
    grid: dict[str, list[JsonValue]]
    status: Status = Field(description="Derived from its jobs' statuses.")
    job_ids: list[int]
    counts: dict[Status, int] = Field(description="How many of its jobs are in each status.")
    created_at: datetime
    updated_at: datetime
    strategy: Strategy = "grid"
    space: dict[str, SpaceParam] | None = None
    objective: Objective = Field(default_factory=Objective)
    early_stop: EarlyStop | None = None
    # Defaults, so a client reads a sweep from a service older than #18 too.
    max_jobs: int | None = Field(
        default=None, description="The budget: the jobs the sweep will create in all."
    )
    parallelism: int | None = Field(
        default=None, description="Jobs queued or running at once (None: all at once)."
    )
    best: SweepBest | None = Field(
        default=None, description="The trial with the best objective so far."
    )
    trials: int = Field(default=0, description="Jobs created so far.")
    steps_spent: int = Field(default=0, description="The sum of the steps logged by its runs.")
    rungs: list[Rung] = Field(default_factory=list, description="With early_stop: each rung.")


class GridError(ValueError):
    """A grid that cannot be expanded; `items` are the contract's validation detail items."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items[:MAX_REPORTED_PROBLEMS]
        first = self.items[0]
        where = ".".join(str(part) for part in first["loc"])
        more = f" (and {len(items) - 1} more)" if len(items) > 1 else ""
        super().__init__(f"invalid sweep: {where}: {first['msg']}{more}")


def grid_size(grid: Mapping[str, Sequence[Any]]) -> int:
    return math.prod(len(values) for values in grid.values())


def sweep_status(counts: Mapping[Status, int]) -> Status:
    """Queued until a job starts, running until all end; then succeeded only if all did."""
    total = sum(counts.values())
    ended = sum(n for status, n in counts.items() if status.is_terminal)
    if total == 0 or counts.get(Status.queued, 0) == total:
        return Status.queued if total else Status.succeeded
    if ended < total:
        return Status.running
    if counts.get(Status.succeeded, 0) == total:
        return Status.succeeded
    return Status.cancelled if counts.get(Status.cancelled, 0) else Status.failed


def expand_grid(
    base: Mapping[str, Any], grid: Mapping[str, Sequence[Any]], max_size: int
) -> list[tuple[dict[str, Any], TrainingConfig]]:
    """Every combination as (the grid values it picked, its validated config)."""
    _check_shape(grid, max_size)
    names = list(grid)
    problems: list[dict[str, Any]] = []
    out: list[tuple[dict[str, Any], TrainingConfig]] = []
    for indexes in itertools.product(*(range(len(grid[name])) for name in names)):
        picked = {name: grid[name][index] for name, index in zip(names, indexes, strict=True)}
        try:
            out.append((picked, TrainingConfig.model_validate({**base, **picked})))
        except ValidationError as exc:
            for item in _locate(exc, dict(zip(names, indexes, strict=True)), picked):
                if item not in problems:
                    problems.append(item)
    if problems:
        raise GridError(problems)
    return out


def _check_shape(grid: Mapping[str, Sequence[Any]], max_size: int) -> None:
    known = TrainingConfig.model_fields
    unknown = [
        {
            "loc": ["grid", name],
            "msg": f"not a TrainingConfig field; known fields: {', '.join(known)}",
            "type": "extra_forbidden",
        }
        for name in grid
        if name not in known
    ]
    if unknown:
        raise GridError(unknown)
    size = grid_size(grid)
    if size > max_size:
        msg = f"the grid has {size} combinations; the cap is {max_size} (MOMENTUM_MAX_GRID_SIZE)"
        raise GridError([{"loc": ["grid"], "msg": msg, "type": "too_large"}])


def _locate(
    exc: ValidationError, indexes: dict[str, int], picked: dict[str, Any]
) -> list[dict[str, Any]]:
    """Point each error into the request: at the grid value that caused it, or at base."""
    items = []
    for error in exc.errors(include_url=False):
        loc = list(error["loc"])
        msg = str(error["msg"])
        if loc and loc[0] in indexes:
            loc = ["grid", loc[0], indexes[str(loc[0])], *loc[1:]]
        elif loc:
            loc = ["base", *loc]
        else:
            # A combination problem (a cnn on ravine): name the combination picked.
            varied = COMBINATION_FIELDS & set(picked)
            loc = ["grid"] if varied else ["base"]
            shown = ", ".join(f"{name}={value!r}" for name, value in picked.items())
            msg = f"combination {shown}: {msg}" if varied else msg
        items.append({"loc": loc, "msg": msg, "type": str(error["type"])})
    return items
