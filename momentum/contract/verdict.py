"""The verdict on a comparison: which value of a parameter is best, how sure we are, and
how many runs per value would settle what is not settled yet.

Answers `GET /sweeps/{id}/verdict` and `GET /compare/verdict` (docs/verdict.md has the
definitions). A statistic that is undefined (no run, fewer than two runs for a spread or
a test) is null.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, JsonValue

from momentum.contract.compare import Mode

VerdictSummary = Literal["final", "best", "tail_mean", "auc", "steps_to_threshold"]
VERDICT_SUMMARIES: tuple[VerdictSummary, ...] = (
    "final",
    "best",
    "tail_mean",
    "auc",
    "steps_to_threshold",
)


class VerdictGroup(BaseModel):
    value: JsonValue = Field(description="The parameter's value shared by the group.")
    run_ids: list[int] = Field(description="Every run of the group, diverged ones included.")
    n: int = Field(description="Runs behind mean and std: not diverged, with a number.")
    mean: float | None
    std: float | None = Field(description="Sample standard deviation (n - 1); null below 2.")
    ci_low: float | None = Field(
        description="mean - t(1 - alpha/2, n - 1) * std / sqrt(n), alpha = 1 - confidence."
    )
    ci_high: float | None
    reached: int = Field(
        description="Of the n runs, those that reached the threshold (all n without one). "
        "With summary=steps_to_threshold the others count as their last step + 1, a "
        "lower bound."
    )
    diverged: int = Field(description="Runs left out: diverged flag or a non-finite number.")
    missing: int = Field(default=0, description="Runs left out: no point of `key` yet.")


class VerdictBest(BaseModel):
    value: JsonValue
    mean: float


class VerdictComparison(BaseModel):
    value: JsonValue = Field(description="The group compared with the best.")
    versus: JsonValue = Field(description="The best group's value.")
    difference: float | None = Field(description="This group's mean minus the best's.")
    p_value: float | None = Field(
        description="Welch's two-sided t-test; null when either n < 2 or both std are 0."
    )
    significant: bool = Field(description="p_value < alpha (false when p_value is null).")
    seeds_needed: int | None = Field(
        description="When not significant: runs per group a two-sample test at level "
        "alpha with power 0.8 needs for this difference, "
        "ceil(2 (z(1 - alpha/2) + z(0.8))^2 s^2 / delta^2), s^2 = (s_a^2 + s_b^2) / 2; "
        "null when delta = 0 or a spread is unknown or zero."
    )


class Verdict(BaseModel):
    by: str
    key: str
    mode: Mode
    summary: VerdictSummary
    confidence: float
    threshold: float | None = None
    sweep_id: int | None = None
    groups: list[VerdictGroup]
    best: VerdictBest | None = Field(
        description="Best mean by mode (fewest steps for steps_to_threshold) among groups "
        "without a diverged run (all groups if every one has one)."
    )
    comparisons: list[VerdictComparison] = Field(description="Each other group vs the best.")
    verdict: str = Field(description="One plain sentence built from these numbers.")
