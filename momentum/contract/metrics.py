"""Metric points: ingest batches and columnar history reads."""

from __future__ import annotations

from typing import Annotated, Literal, NotRequired

from pydantic import BaseModel, ConfigDict, Field, with_config
from typing_extensions import TypedDict

from momentum.contract.common import INT64_MAX, INT64_MIN, ContractModel, MetricKey
from momentum.contract.values import EncodedValue, MetricValue

# A step is any int64 (BIGINT columns), negative ones included, as MLflow's steps are.
MIN_STEP, MAX_STEP = INT64_MIN, INT64_MAX
# Far past any real clock reading, yet it keeps garbage such as 1e300 out of storage.
MAX_WALL_TIME = 1e11

Step = Annotated[int, Field(strict=True, ge=MIN_STEP, le=MAX_STEP)]
WallTime = Annotated[float, Field(strict=True, ge=0, le=MAX_WALL_TIME, allow_inf_nan=False)]


def better_direction(key: str) -> Literal["min", "max"] | None:
    """Which way a key improves, judged by its name's last segment: `…loss` goes down,
    `…accuracy` and `…acc` go up (`train/loss`, `val_accuracy`); other keys: unknown."""
    name = key.rsplit("/", 1)[-1]
    if name.endswith("loss"):
        return "min"
    if name.endswith(("accuracy", "acc")):
        return "max"
    return None


@with_config(ConfigDict(extra="forbid"))
class MetricPoint(TypedDict):
    """One point. A TypedDict, not a model: a batch holds up to 100,000 of them and
    validating into plain dicts is markedly cheaper than building model instances."""

    key: MetricKey
    step: Step
    value: MetricValue
    wall_time: NotRequired[
        Annotated[
            WallTime | None,
            Field(description="Seconds since the epoch; missing: when the server got it."),
        ]
    ]


class PointBatch(ContractModel):
    points: list[MetricPoint] = Field(min_length=1)


class IngestResult(BaseModel):
    run_id: int
    accepted: int = Field(description="Points stored (after collapsing repeats of a key and step).")
    keys: list[str]


class SeriesInfo(BaseModel):
    key: str
    count: int
    first_step: int
    last_step: int
    last_value: EncodedValue


class SeriesList(BaseModel):
    run_id: int
    items: list[SeriesInfo]


class SeriesHistory(BaseModel):
    key: str
    steps: list[int]
    values: list[EncodedValue]
    wall_times: list[float]
    total: int = Field(description="Points in the requested step range before downsampling.")
    downsampled: bool
