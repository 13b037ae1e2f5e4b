"""Adaptive sweeps (#18): the search space, the objective, the early-stopping rule, and
what a sweep reports about them (its best trial and its rungs).

Pure shapes, shared by the service, the CLI and tests. Each check names the field it
refuses, so a bad space answers 422 at `["space", NAME]`.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, Field, JsonValue, StrictBool, model_validator

from momentum.contract.common import ContractModel, MetricKey, StorableJsonValue

Strategy = Literal["grid", "random", "tpe"]
SummaryName = Literal["final", "best", "tail_mean"]
Direction = Literal["min", "max"]
StopRule = Literal["asha", "median"]
DEFAULT_PARALLELISM = 4
MAX_CHOICES = 1000
# Rungs beyond this many are never needed (reduction_factor >= 2 and steps <= 10**7).
MAX_RUNGS = 64


class SpaceParam(ContractModel):
    """One dimension of a random or TPE search: a float or int range, or a choice."""

    type: Literal["float", "int", "choice"]
    low: float | None = Field(default=None, description="float and int: the lowest value.")
    high: float | None = Field(default=None, description="float and int: the highest value.")
    log: StrictBool = Field(default=False, description="Sample on a log scale (low > 0).")
    choices: list[StorableJsonValue] | None = Field(
        default=None, description="choice: the values to pick from (distinct, at least one)."
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.type == "choice":
            self._check_choices()
        else:
            self._check_range()
        return self

    def _check_choices(self) -> None:
        if self.low is not None or self.high is not None or self.log:
            raise ValueError("a choice takes `choices` only, not low, high or log")
        if not self.choices:
            raise ValueError("a choice needs a non-empty list of `choices`")
        if len(self.choices) > MAX_CHOICES:
            raise ValueError(f"a choice takes at most {MAX_CHOICES} choices")
        if any(isinstance(choice, (list, dict)) for choice in self.choices):
            raise ValueError("`choices` must be numbers, strings, booleans or null")
        shown = [repr(choice) for choice in self.choices]
        if len(set(shown)) != len(shown):
            raise ValueError("`choices` repeats a value")

    def _check_range(self) -> None:
        if self.choices is not None:
            raise ValueError(f"a {self.type} range takes low and high, not choices")
        if self.low is None or self.high is None:
            raise ValueError(f"a {self.type} range needs both low and high")
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range needs low > 0 (got {self.low})")
        if self.type == "int" and (not self.low.is_integer() or not self.high.is_integer()):
            raise ValueError("an int range needs whole numbers for low and high")


class Objective(ContractModel):
    """What a sweep optimizes: a metric of each run, reduced by a summary."""

    key: MetricKey = "loss"
    mode: Direction = "min"
    summary: SummaryName = Field(
        default="tail_mean",
        description="final (the last value), best, or tail_mean (the mean over the last "
        "10 % of the logged steps), as the compare API defines them.",
    )


class EarlyStop(ContractModel):
    """Stop losing runs at rungs `min_step · reduction_factor^k` (both rules judge there)."""

    rule: StopRule
    key: MetricKey | None = Field(default=None, description="Default: the objective's key.")
    mode: Direction | None = Field(default=None, description="Default: the objective's mode.")
    min_step: int = Field(default=100, strict=True, ge=1, le=10_000_000)
    reduction_factor: int = Field(default=3, strict=True, ge=2, le=100)

    def rungs(self, last_step: int) -> list[int]:
        """The rung steps below `last_step` (a run ending there needs no verdict)."""
        out: list[int] = []
        step = self.min_step
        while step < last_step and len(out) < MAX_RUNGS:
            out.append(step)
            step *= self.reduction_factor
        return out


class SweepBest(BaseModel):
    """The trial with the best objective so far (a sample's mean over its grid copies)."""

    job_id: int
    run_id: int | None
    params: dict[str, JsonValue]
    objective: float


class Rung(BaseModel):
    """One rung of an early-stopping sweep: the runs that reached it and what it cost them."""

    step: int
    cutoff: float | None = Field(
        description="The value a run had to match to go on (asha: the worst value in the "
        "top 1/reduction_factor; median: the median at the latest decision)."
    )
    reached: int = Field(description="How many runs logged the rung's step.")
    stopped: int = Field(description="How many of them were stopped there.")
