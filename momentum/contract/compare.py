"""Comparing runs: curves side by side, summaries and rankings, groups across seeds.

Values are the contract's: floats, with NaN/±Infinity as the strings "NaN",
"Infinity", "-Infinity". A statistic that is undefined (no finite value, fewer than two
runs for a spread) is null.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, JsonValue

from momentum.contract.values import EncodedValue

XAxis = Literal["step", "wall_time"]
Mode = Literal["min", "max"]


class CompareSeries(BaseModel):
    run_id: int
    run_name: str
    key: str
    steps: list[int]
    wall_times: list[float] = Field(
        description="Seconds since the epoch; with x=wall_time, seconds since the run's "
        "first point (the earliest among the keys asked for)."
    )
    values: list[EncodedValue]
    smoothed: list[EncodedValue] | None = Field(
        default=None,
        description="Debiased EMA (TensorBoard's rule) of the full-resolution series, cut "
        "at the same points as `values`; present when `smoothing` is given.",
    )
    total: int = Field(description="Points in the step range before downsampling.")
    downsampled: bool


class CompareResult(BaseModel):
    x: XAxis
    smoothing: float | None
    series: list[CompareSeries]


class RunSummary(BaseModel):
    run_id: int
    run_name: str
    points: int
    first_step: int | None
    last_step: int | None
    final: EncodedValue | None = Field(description="The value at the last logged step.")
    best: EncodedValue | None = Field(description="Lowest (mode=min) or highest finite value.")
    best_step: int | None
    tail_mean: EncodedValue | None = Field(
        description="Mean over the last 10 % of the step range (NaN/Inf there propagate)."
    )
    steps_to_threshold: int | None = Field(
        description="First logged step whose value is <= threshold (min) or >= (max)."
    )
    auc: EncodedValue | None = Field(description="Trapezoid area under (step, value).")
    diverged: bool = Field(description="The run is marked diverged or this curve is not finite.")
    speedup: float | None = Field(
        description="Baseline's steps_to_threshold divided by this run's."
    )


class CompareSummary(BaseModel):
    key: str
    mode: Mode
    threshold: float | None
    baseline: int | None
    runs: list[RunSummary]
    ranking: list[int] = Field(description="Run ids, best first.")
    criterion: str = Field(description="How `ranking` orders the runs.")


class Stat(BaseModel):
    mean: float | None
    std: float | None = Field(description="Sample standard deviation (n - 1); null below 2.")
    n: int = Field(description="Runs with a finite value behind the statistic.")


class GroupCurve(BaseModel):
    steps: list[int]
    mean: list[float | None]
    std: list[float | None]
    ci_low: list[float | None] = Field(description="95 % confidence interval of the mean (t).")
    ci_high: list[float | None]
    count: list[int] = Field(description="Runs with a finite value at each step.")


class GroupSummary(BaseModel):
    value: JsonValue = Field(description="The parameter's value shared by the group.")
    run_ids: list[int]
    runs: int
    diverged: int
    final: Stat
    steps_to_threshold: Stat = Field(description="Over the runs that reached the threshold.")
    curve: GroupCurve


class BestSetting(BaseModel):
    value: JsonValue
    criterion: str


class GroupComparison(BaseModel):
    key: str
    by: str
    mode: Mode
    threshold: float | None
    sweep_id: int | None = None
    groups: list[GroupSummary]
    best: BestSetting | None
    interpolation: str = Field(description="How member curves meet on the common step grid.")
