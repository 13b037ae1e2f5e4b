"""What the MLflow routes answer with 200, as MLflow's REST reference has it.

Named `Mlflow...` so that they stand apart from /api/v1's models in the one schema.
These models only document the responses (the routes build plain dicts, and the hot
ones answer with orjson directly), so the OpenAPI schema says what a client gets and
tests/test_fuzz.py checks every answer against it. Fields MLflow marks optional and
we never send (`artifact_location`'s URI, run inputs) are still listed.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

# Non-finite values go out as these strings (the contract's rule), finite ones as numbers.
MetricValue = float | Literal["NaN", "Infinity", "-Infinity"]
RunStatus = Literal["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"]


class MlflowKeyValue(BaseModel):
    """A param or a tag."""

    key: str
    value: str


class MlflowExperiment(BaseModel):
    experiment_id: str
    name: str
    artifact_location: str
    lifecycle_stage: Literal["active", "deleted"]
    creation_time: int | None = None
    last_update_time: int | None = None
    tags: list[MlflowKeyValue] = []


class MlflowMetric(BaseModel):
    key: str
    value: MetricValue
    timestamp: int
    step: int


class MlflowRunMetric(MlflowMetric):
    """A metric of one of several runs (get-history-bulk-interval)."""

    run_id: str


class MlflowRunInfo(BaseModel):
    run_id: str
    run_uuid: str
    run_name: str
    experiment_id: str
    user_id: str
    status: RunStatus
    start_time: int
    end_time: int | None = None
    artifact_uri: str
    lifecycle_stage: Literal["active", "deleted"]


class MlflowRunData(BaseModel):
    metrics: list[MlflowMetric]
    params: list[MlflowKeyValue]
    tags: list[MlflowKeyValue]


class MlflowRun(BaseModel):
    info: MlflowRunInfo
    data: MlflowRunData
    inputs: dict[str, object] = {}


class MlflowExperimentCreated(BaseModel):
    experiment_id: str


class MlflowExperimentFound(BaseModel):
    experiment: MlflowExperiment


class MlflowExperimentPage(BaseModel):
    experiments: list[MlflowExperiment]
    next_page_token: str | None = None


class MlflowRunFound(BaseModel):
    run: MlflowRun


class MlflowRunUpdated(BaseModel):
    run_info: MlflowRunInfo


class MlflowRunPage(BaseModel):
    runs: list[MlflowRun]
    next_page_token: str | None = None


class MlflowEmpty(BaseModel):
    """MLflow answers a write with `{}`."""


class MlflowMetricHistory(BaseModel):
    metrics: list[MlflowMetric]
    next_page_token: str | None = None


class MlflowRunMetricHistory(BaseModel):
    metrics: list[MlflowRunMetric]


def documented(model: type[BaseModel]) -> dict[int | str, dict[str, object]]:
    """`responses=` for a route whose 200 body is `model` (documentation only)."""
    return {200: {"model": model, "description": "as in MLflow's REST reference"}}
