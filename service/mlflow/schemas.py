"""The MLflow routes' request bodies, and what they answer with 200, as MLflow's REST
reference has them.

Requests: MLflow's clients send more fields than each route reads (`run_uuid`, ...), so
unknown fields are ignored; int64 fields take a number or its digits (service/mlflow/
values.py). Responses are named `Mlflow...` so that they stand apart from /api/v1's
models in the one schema. They only document the responses (the routes build plain
dicts, and the hot ones answer with orjson directly), so the OpenAPI schema says what a
client gets and tests/test_fuzz.py checks every answer against it. Fields MLflow marks
optional and we never send (`artifact_location`'s URI, run inputs) are still listed.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from momentum.contract.metrics import MAX_WALL_TIME
from service.mlflow.values import digits_as_int

_INT_JSON: dict[str, Any] = {
    "anyOf": [{"type": "integer"}, {"type": "string", "pattern": "^-?[0-9]{1,19}$"}]
}
MAX_MS = int(MAX_WALL_TIME * 1000)
# Milliseconds since the epoch, as MLflow's timestamps are.
Millis = Annotated[
    int,
    BeforeValidator(digits_as_int),
    Field(strict=True, ge=0, le=MAX_MS),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 0, "maximum": MAX_MS},
                _INT_JSON["anyOf"][1],
            ],
            "description": "milliseconds since 1970",
        }
    ),
]
PageSize = Annotated[
    int, BeforeValidator(digits_as_int), Field(strict=True), WithJsonSchema(_INT_JSON)
]
# An MLflow run id (here our run's integer id as text); the example names a run that
# exists in tests/test_fuzz.py, so schemathesis reaches past the 404.
RunId = Annotated[str | None, Field(examples=["1"])]
# One metric of log-batch: parsed by service/mlflow/metrics.py (fast, and MLflow's
# leniency: a step left out is 0; a timestamp is required, checked by the route), documented here.
_METRIC_JSON = {
    "type": "object",
    "required": ["key", "value"],
    "properties": {
        "key": {"type": "string", "examples": ["loss"]},
        "value": {
            "anyOf": [{"type": "number"}, {"type": "string"}],
            "description": 'a number, or its text: "NaN", "Infinity", "-Infinity", "0.5"',
        },
        # null or left out: now, and step 0 (protobuf's JSON reads null as unset)
        "timestamp": {"anyOf": [*_INT_JSON["anyOf"], {"type": "null"}]},
        "step": {"anyOf": [*_INT_JSON["anyOf"], {"type": "null"}]},
    },
}
MetricIn = Annotated[dict[str, Any], WithJsonSchema(_METRIC_JSON)]


class _Body(BaseModel):
    """MLflow's clients send more fields than each route reads (`run_uuid`, ...)."""

    model_config = ConfigDict(extra="ignore")


class KeyValue(_Body):
    key: str
    value: str = ""


class ExperimentCreate(_Body):
    name: str | None = None
    artifact_location: str | None = None
    tags: list[KeyValue] = []


class ExperimentSearch(_Body):
    max_results: PageSize = 1000
    page_token: str | None = None
    filter: str | None = None
    # The enum's name (ACTIVE_ONLY, DELETED_ONLY, ALL) or its number (1, 2, 3).
    view_type: str | int | None = None
    order_by: list[str] = []


class ExperimentRef(_Body):
    experiment_id: str | None = None


class ExperimentUpdate(ExperimentRef):
    new_name: str | None = None


class ExperimentTag(ExperimentRef):
    key: str | None = None
    value: str = ""


class DatasetSearch(_Body):
    experiment_ids: list[str] = []


class RunCreateBody(_Body):
    experiment_id: str = Field(default="0", examples=["0", "1"])
    user_id: str | None = None
    run_name: str | None = None
    start_time: Millis | None = None
    tags: list[KeyValue] = []


class RunUpdateBody(_Body):
    run_id: RunId = None
    run_uuid: RunId = None
    status: str | None = None
    end_time: Millis | None = None
    run_name: str | None = None


class RunRef(_Body):
    run_id: RunId = None
    run_uuid: RunId = None


class RunSearch(_Body):
    experiment_ids: list[str] = []
    filter: str | None = None
    run_view_type: str | int | None = None
    max_results: PageSize = 1000
    order_by: list[str] = []
    page_token: str | None = None


class LogBatch(RunRef):
    metrics: list[MetricIn] = []
    params: list[KeyValue] = []
    tags: list[KeyValue] = []


class LogMetric(RunRef):
    key: Any = None
    value: Any = None
    timestamp: Any = None
    step: Any = None


class LogParam(KeyValue, RunRef):
    """Fields in MLflow's order (run_id, run_uuid, key, value): the first refused one
    is the one named, as MLflow names it."""


class TagRef(RunRef):
    key: str | None = None


class LogInputs(RunRef):
    # Parsed by service/mlflow/datasets.py, MLflow's DatasetInput: {tags, dataset}.
    datasets: list[dict[str, Any]] = []
    models: list[dict[str, Any]] = []


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


class MlflowDataset(BaseModel):
    name: str
    digest: str
    source_type: str
    source: str
    schema_: str | None = Field(default=None, alias="schema")
    profile: str | None = None


class MlflowDatasetInput(BaseModel):
    tags: list[MlflowKeyValue] = []
    dataset: MlflowDataset


class MlflowRunInputs(BaseModel):
    dataset_inputs: list[MlflowDatasetInput] = []


class MlflowRun(BaseModel):
    info: MlflowRunInfo
    data: MlflowRunData
    inputs: MlflowRunInputs = MlflowRunInputs()


class MlflowDatasetSummary(BaseModel):
    experiment_id: str
    name: str
    digest: str
    context: str | None = None


class MlflowDatasetSummaries(BaseModel):
    dataset_summaries: list[MlflowDatasetSummary] = []


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


def documented(model: type[BaseModel]) -> dict[str, Any]:
    """A route's arguments for a 200 body documented as `model`, not validated: the
    routes build MLflow's JSON themselves."""
    responses = {200: {"model": model, "description": "as in MLflow's REST reference"}}
    return {"response_model": None, "responses": responses}
