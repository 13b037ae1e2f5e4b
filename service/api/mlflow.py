"""MLflow's tracking REST API (`/api/2.0/mlflow/...`) over the same storage as /api/v1.

Existing MLflow code logs here after `MLFLOW_TRACKING_URI` points at the service; the
shapes follow MLflow's REST reference, errors are MLflow's `{"error_code", "message"}`.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, WithJsonSchema
from sqlalchemy import select
from sqlalchemy.orm import Session

from momentum.contract import RunCreate, RunUpdate, Status
from momentum.contract.metrics import MAX_STEP, MAX_WALL_TIME
from service.auth import CallerRole, Role, Scope, requires
from service.deps import SessionDep, SettingsDep, WriteSessionDep
from service.mlflow import entities, schemas, search
from service.mlflow import metrics as mlflow_metrics
from service.mlflow.errors import ERROR_RESPONSES, MlflowError, invalid
from service.models import Experiment, Run
from service.responses import FastJSONResponse
from service.storage import metrics as metric_store
from service.storage import runs as run_store

MLFLOW_PREFIX = "/api/2.0/mlflow"
AJAX_PREFIX = "/ajax-api/2.0/mlflow"
router = APIRouter(tags=["mlflow"], responses=ERROR_RESPONSES)
READ, INGEST, ADMIN = requires(Scope.read), requires(Scope.ingest), requires(Scope.admin)
SEARCH_MAX_RESULTS = 50_000
HISTORY_MAX_RESULTS = 25_000
BULK_MAX_RUNS, BULK_MAX_RESULTS = 100, 2500


def _proto_int(value: Any) -> Any:
    """An int64 as protobuf's JSON mapping has it: a number, or its digits as a string
    (other MLflow clients send those); never a boolean or a fraction."""
    if isinstance(value, str):
        number = entities.int64_of(value)
        return value if number is None else number
    return value


_INT_JSON: dict[str, Any] = {
    "anyOf": [{"type": "integer"}, {"type": "string", "pattern": "^-?[0-9]{1,19}$"}]
}
MAX_MS = int(MAX_WALL_TIME * 1000)
# Milliseconds since the epoch, as MLflow's timestamps are.
Millis = Annotated[
    int,
    BeforeValidator(_proto_int),
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
    int, BeforeValidator(_proto_int), Field(strict=True), WithJsonSchema(_INT_JSON)
]
# An MLflow run id (here our run's integer id as text); the example names a run that
# exists in tests/test_fuzz.py, so schemathesis reaches past the 404.
RunId = Annotated[str | None, Field(examples=["1"])]
# One metric of log-batch: parsed by service/mlflow/metrics.py (fast, and MLflow's
# leniency: a step left out is 0, a timestamp left out is now), documented here.
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
RunIdQuery = Annotated[str | None, Query(examples=["1"])]
MetricKeyQuery = Annotated[str, Query(examples=["loss"])]
# int64, as MLflow's proto has it: past that the databases overflow (a 500 once).
StepQuery = Annotated[int | None, Query(ge=-(2**63), le=MAX_STEP)]


def _doc(model: type[BaseModel]) -> dict[str, Any]:
    """The 200 body documented as `model` (service/mlflow/schemas.py), not validated:
    the routes build MLflow's JSON themselves."""
    return {"response_model": None, "responses": schemas.documented(model)}


class _Body(BaseModel):
    """MLflow's clients send more fields than each route reads (`run_uuid`, ...)."""

    model_config = ConfigDict(extra="ignore")


class KeyValue(_Body):
    key: str
    value: str = ""


class ExperimentCreate(_Body):
    name: str


class ExperimentSearch(_Body):
    max_results: PageSize = 1000
    page_token: str | None = None
    filter: str | None = None
    view_type: str | None = None


class RunCreateBody(_Body):
    experiment_id: str = Field(default="0", examples=["0", "1"])
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
    run_view_type: str | None = None
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


class LogParam(RunRef, KeyValue):
    pass


def _offset(token: str | None) -> int:
    """A page token: an offset or a step this server gave out, so an int64 from 0 up."""
    if not token:
        return 0
    offset = entities.int64_of(token)
    if offset is None or offset < 0:
        raise invalid(f"page_token {entities.shown(token)!r} is not one this server gave out")
    return offset


def _page_size(value: int, largest: int) -> int:
    if not 1 <= value <= largest:
        raise invalid(f"max_results must be between 1 and {largest}, not {value}")
    return value


def _contract(model: type[Any], **fields: Any) -> Any:
    """Our contract's checks (lengths, no NUL) as MLflow's INVALID_PARAMETER_VALUE."""
    try:
        return model(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise invalid(f"{where}: {first['msg']}") from exc


def _run_json(session: Session, runs: list[Run]) -> list[dict[str, Any]]:
    experiments = entities.experiment_ids_by_project(session, {run.project for run in runs})
    latest = metric_store.latest_values(session, [run.id for run in runs])
    return [
        entities.run_json(run, experiments.get(run.project, ""), latest.get(run.id, {}))
        for run in runs
    ]


# Experiments


@router.post("/experiments/create", dependencies=[INGEST], **_doc(schemas.MlflowExperimentCreated))
def experiments_create(body: ExperimentCreate, session: WriteSessionDep) -> dict[str, Any]:
    """Create an experiment: a project with an MLflow experiment id."""
    _contract(RunCreate, project=body.name)
    return {"experiment_id": str(entities.create_experiment(session, body.name).id)}


@router.get("/experiments/get", dependencies=[READ], **_doc(schemas.MlflowExperimentFound))
def experiments_get(
    experiment_id: Annotated[str, Query(examples=["0"])], session: SessionDep
) -> dict[str, Any]:
    """One experiment by id."""
    experiment = entities.load_experiment(session, experiment_id)
    return {"experiment": entities.experiment_json(experiment)}


@router.get("/experiments/get-by-name", dependencies=[READ], **_doc(schemas.MlflowExperimentFound))
def experiments_get_by_name(experiment_name: str, session: SessionDep) -> dict[str, Any]:
    """One experiment by name."""
    experiment = entities.experiment_by_name(session, experiment_name)
    if experiment is None:
        raise entities.missing(f"Could not find experiment with name '{experiment_name}'")
    return {"experiment": entities.experiment_json(experiment)}


def _search_experiments(body: ExperimentSearch, session: Session) -> dict[str, Any]:
    clauses = search.parse_filter(body.filter)
    offset, size = _offset(body.page_token), _page_size(body.max_results, SEARCH_MAX_RESULTS)
    if body.view_type == "DELETED_ONLY":
        return {"experiments": []}
    found = []
    for experiment in session.scalars(select(Experiment).order_by(Experiment.id)):
        attributes = {"name": experiment.name, "experiment_id": str(experiment.id)}

        def lookup(kind: str, key: str, values: dict[str, str] = attributes) -> Any:
            return values.get(key) if kind == "attribute" else None

        if search.matches(clauses, lookup):
            found.append(entities.experiment_json(experiment))
    out: dict[str, Any] = {"experiments": found[offset : offset + size]}
    if len(found) > offset + size:
        out["next_page_token"] = str(offset + size)
    return out


@router.post("/experiments/search", dependencies=[READ], **_doc(schemas.MlflowExperimentPage))
def experiments_search(body: ExperimentSearch, session: SessionDep) -> dict[str, Any]:
    """Experiments, filtered by `name` (=, !=, LIKE, ILIKE), paged."""
    return _search_experiments(body, session)


@router.get("/experiments/search", dependencies=[READ], **_doc(schemas.MlflowExperimentPage))
def experiments_search_get(
    session: SessionDep,
    max_results: int = 1000,
    page_token: str | None = None,
    filter: str | None = None,
    view_type: str | None = None,
) -> dict[str, Any]:
    """Experiments, filtered by `name`, paged (GET form)."""
    body = ExperimentSearch(
        max_results=max_results, page_token=page_token, filter=filter, view_type=view_type
    )
    return _search_experiments(body, session)


# Runs


@router.post("/runs/create", dependencies=[INGEST], **_doc(schemas.MlflowRunFound))
def runs_create(body: RunCreateBody, session: WriteSessionDep) -> dict[str, Any]:
    """Create a run in an experiment's project."""
    experiment = entities.load_experiment(session, body.experiment_id)
    tags = {tag.key: tag.value for tag in body.tags}
    name = body.run_name or tags.get("mlflow.runName") or None
    create = _contract(RunCreate, name=name, project=experiment.project, tags=tags)
    run, _ = run_store.create_run(session, create)
    if body.start_time is not None:
        run.started_at = entities.from_ms(body.start_time)
    session.flush()
    return {"run": _run_json(session, [run])[0]}


@router.get("/runs/get", dependencies=[READ], **_doc(schemas.MlflowRunFound))
def runs_get(
    session: SessionDep, run_id: RunIdQuery = None, run_uuid: RunIdQuery = None
) -> dict[str, Any]:
    """One run with its latest metrics, params and tags."""
    run = entities.load_run(session, run_id or run_uuid)
    return {"run": _run_json(session, [run])[0]}


@router.post("/runs/update", dependencies=[INGEST], **_doc(schemas.MlflowRunUpdated))
def runs_update(body: RunUpdateBody, session: WriteSessionDep, role: CallerRole) -> dict[str, Any]:
    """Set a run's status, end time or name."""
    run = entities.load_run(session, body.run_id or body.run_uuid)
    _check_writable(session, run, role)
    status: Status | None = None
    if body.status is not None:
        status = entities.STATUS_FROM_MLFLOW.get(body.status)
        if status is None:
            raise invalid(
                f"status {body.status!r}: one of {', '.join(entities.STATUS_FROM_MLFLOW)}"
            )
    run_store.update_run(session, run, _contract(RunUpdate, status=status, name=body.run_name))
    if body.end_time is not None and status is not None and status != Status.running:
        run.ended_at = entities.from_ms(body.end_time)
    session.flush()
    experiment = entities.experiment_ids_by_project(session, {run.project})
    return {"run_info": entities.run_info(run, experiment.get(run.project, ""))}


@router.post("/runs/delete", dependencies=[ADMIN], **_doc(schemas.MlflowEmpty))
def runs_delete(body: RunRef, session: WriteSessionDep) -> dict[str, Any]:
    """Delete a run with all its metrics (for good: there is no restore)."""
    session.delete(entities.load_run(session, body.run_id or body.run_uuid))
    session.flush()
    return {}


def _run_value(run: Run, latest: dict[str, tuple[int, float | None]], kind: str, key: str) -> Any:
    if kind == "metric":
        found = latest.get(key)
        return None if found is None else (float("nan") if found[1] is None else found[1])
    if kind == "param":
        value = run.params.get(key)
        return None if value is None else entities.param_out(value)
    if kind == "tag":
        return run.tags.get(key) or (run.name if key == "mlflow.runName" else None)
    attributes = {
        "status": entities.STATUS_TO_MLFLOW[run.status],
        "run_name": run.name,
        "run_id": str(run.id),
        "user_id": run.tags.get("mlflow.user"),
        "start_time": entities.to_ms(run.started_at or run.created_at),
        "end_time": entities.to_ms(run.ended_at),
        "created": entities.to_ms(run.created_at),
    }
    if key not in attributes:
        raise invalid(f"attribute {key!r}: one of {', '.join(attributes)}")
    return attributes[key]


@router.post("/runs/search", dependencies=[READ], **_doc(schemas.MlflowRunPage))
def runs_search(body: RunSearch, session: SessionDep) -> dict[str, Any]:
    """Runs of experiments, filtered and ordered with MLflow's search syntax, paged."""
    clauses = search.parse_filter(body.filter)
    order = search.parse_order_by(body.order_by) + [("attribute", "start_time", True)]
    offset, size = _offset(body.page_token), _page_size(body.max_results, SEARCH_MAX_RESULTS)
    if body.run_view_type == "DELETED_ONLY":
        return {"runs": []}
    projects = [entities.load_experiment(session, ident).project for ident in body.experiment_ids]
    runs = list(
        session.scalars(select(Run).where(Run.project.in_(projects)).order_by(Run.id.desc()))
    )
    latest = metric_store.latest_values(session, [run.id for run in runs])

    def value(run: Run, kind: str, key: str) -> Any:
        return _run_value(run, latest.get(run.id, {}), kind, key)

    found = [run for run in runs if search.matches(clauses, functools.partial(value, run))]
    page = search.ordered(found, order, value)[offset : offset + size]
    out: dict[str, Any] = {"runs": _run_json(session, page)}
    if len(found) > offset + size:
        out["next_page_token"] = str(offset + size)
    return out


# Logging


def _set_tags(run: Run, tags: list[KeyValue]) -> None:
    if not tags:
        return
    merged = {**run.tags, **{tag.key: tag.value for tag in tags}}
    _contract(RunUpdate, tags=merged)
    run.tags = merged
    if "mlflow.runName" in merged:
        run.name = _contract(RunUpdate, name=merged["mlflow.runName"]).name


def _check_writable(
    session: Session, run: Run, role: Role, params: dict[str, Any] | None = None
) -> None:
    """The worker token's rights on runs (SECURITY.md), as on /api/v1: 403 otherwise."""
    if role is Role.worker:
        refusal = run_store.worker_write_refusal(session, run, params)
        if refusal is not None:
            raise refusal


def _merged_params(run: Run, params: list[KeyValue]) -> dict[str, Any] | None:
    """The run's params with `params` added (None if there are none); a param that would
    change its value is MLflow's 400."""
    if not params:
        return None
    merged = dict(run.params)
    for param in params:
        old = merged.get(param.key)
        if old is not None and entities.param_out(old) != param.value:
            raise invalid(
                f"Changing param values is not allowed. Param with key='{param.key}' was "
                f"already logged with value='{entities.param_out(old)}' for run ID='{run.id}'. "
                f"Attempted logging new value '{param.value}'."
            )
        merged[param.key] = entities.param_in(param.value)
    _contract(RunUpdate, params=merged)
    return merged


def _log(
    session: Session,
    ref: RunRef,
    metrics: list[dict[str, Any]],
    params: list[KeyValue],
    tags: list[KeyValue],
    role: Role,
    max_keys: int | None = None,
) -> dict[str, Any]:
    run = entities.load_run(session, ref.run_id or ref.run_uuid)
    parsed = [mlflow_metrics.parse_metric(metric) for metric in metrics]
    merged = _merged_params(run, params)
    _check_writable(session, run, role, merged)
    if merged is not None:
        entities.set_params(run, merged)
    _set_tags(run, tags)
    session.flush()
    mlflow_metrics.log_metrics(session, run, parsed, max_keys)
    return {}


@router.post("/runs/log-batch", dependencies=[INGEST], **_doc(schemas.MlflowEmpty))
def runs_log_batch(
    body: LogBatch, session: WriteSessionDep, settings: SettingsDep, role: CallerRole
) -> dict[str, Any]:
    """Metrics, params and tags of one run, atomically (repeated steps: see README)."""
    keys = settings.max_keys_per_run
    return _log(session, body, body.metrics, body.params, body.tags, role, keys)


@router.post("/runs/log-metric", dependencies=[INGEST], **_doc(schemas.MlflowEmpty))
def runs_log_metric(
    body: LogMetric, session: WriteSessionDep, settings: SettingsDep, role: CallerRole
) -> dict[str, Any]:
    """One metric value (repeated steps: see README)."""
    metric = {"key": body.key, "value": body.value, "timestamp": body.timestamp, "step": body.step}
    return _log(session, body, [metric], [], [], role, settings.max_keys_per_run)


@router.post("/runs/log-parameter", dependencies=[INGEST], **_doc(schemas.MlflowEmpty))
def runs_log_parameter(
    body: LogParam, session: WriteSessionDep, role: CallerRole
) -> dict[str, Any]:
    """One param; a param cannot change its value."""
    return _log(session, body, [], [KeyValue(key=body.key, value=body.value)], [], role)


@router.post("/runs/set-tag", dependencies=[INGEST], **_doc(schemas.MlflowEmpty))
def runs_set_tag(body: LogParam, session: WriteSessionDep, role: CallerRole) -> dict[str, Any]:
    """Set one tag of a run."""
    return _log(session, body, [], [], [KeyValue(key=body.key, value=body.value)], role)


# Metric histories


@router.get("/metrics/get-history", dependencies=[READ], **_doc(schemas.MlflowMetricHistory))
def metrics_get_history(
    session: SessionDep,
    metric_key: MetricKeyQuery,
    run_id: RunIdQuery = None,
    run_uuid: str | None = None,
    max_results: int | None = None,
    page_token: str | None = None,
) -> Response:
    """Every value of one metric of a run, by step, paged with `max_results`/`page_token`."""
    run = entities.load_run(session, run_id or run_uuid)
    size = _page_size(max_results or HISTORY_MAX_RESULTS, HISTORY_MAX_RESULTS)
    start = _offset(page_token)
    items, following = mlflow_metrics.history(session, run.id, metric_key, start, size)
    out: dict[str, Any] = {"metrics": items}
    if following is not None:
        out["next_page_token"] = str(following)
    return FastJSONResponse(out)


@router.get(
    "/metrics/get-history-bulk-interval",
    dependencies=[READ],
    **_doc(schemas.MlflowRunMetricHistory),
)
def metrics_get_history_bulk_interval(
    session: SessionDep,
    metric_key: MetricKeyQuery,
    run_ids: Annotated[list[str], Query(examples=[["1"]])],
    start_step: StepQuery = None,
    end_step: StepQuery = None,
    max_results: int = BULK_MAX_RESULTS,
) -> Response:
    """One metric of up to 100 runs, at most `max_results` evenly spaced steps per run."""
    if not 1 <= len(run_ids) <= BULK_MAX_RUNS:
        raise invalid(f"run_ids: between 1 and {BULK_MAX_RUNS} runs, not {len(run_ids)}")
    size = _page_size(max_results, BULK_MAX_RESULTS)
    if (start_step is None) != (end_step is None):
        raise invalid("If either start step or end step are specified, both must be specified.")
    start, end = start_step or 0, MAX_STEP if end_step is None else end_step
    if start > end:
        raise invalid(f"end_step must be greater than start_step, not {start}..{end}")
    items: list[dict[str, Any]] = []
    for raw in run_ids:
        run = entities.load_run(session, raw)
        items += mlflow_metrics.sampled(session, run.id, metric_key, start, end, size)
    return FastJSONResponse({"metrics": items})


__all__ = ["AJAX_PREFIX", "MLFLOW_PREFIX", "MlflowError", "router"]
