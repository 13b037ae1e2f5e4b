"""MLflow's runs: create, get, update, delete, search, and logging to one run."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from momentum.contract import RunCreate
from service.auth import CallerDep, Role, Scope, requires
from service.deps import SessionDep, SettingsDep, WriteSessionDep
from service.domain_errors import Forbidden
from service.mlflow import datasets, entities
from service.mlflow import experiments as mlflow_experiments
from service.mlflow import metrics as mlflow_metrics
from service.mlflow import runs as mlflow_runs
from service.mlflow.errors import checked, required_string, stored_text
from service.mlflow.schemas import (
    KeyValue,
    LogBatch,
    LogInputs,
    LogMetric,
    LogParam,
    MlflowEmpty,
    MlflowRunFound,
    MlflowRunPage,
    MlflowRunUpdated,
    RunCreateBody,
    RunRef,
    RunSearch,
    RunUpdateBody,
    TagRef,
    documented,
)
from service.models import ACTIVE, DELETED
from service.storage import runs as run_store
from service.write_rights import check_own_run, check_writable

router = APIRouter()
READ, INGEST, ADMIN = requires(Scope.read), requires(Scope.ingest), requires(Scope.admin)
# Logging to one run: a run token may, to its own run (checked on the body's run id).
RUN_INGEST = requires(Scope.ingest, run_token=True)
# An MLflow run id in the query; the example names a run tests/test_fuzz.py makes.
RunIdQuery = Annotated[str | None, Query(examples=["1"])]


@router.post("/runs/create", dependencies=[INGEST], **documented(MlflowRunFound))
def runs_create(body: RunCreateBody, session: WriteSessionDep) -> dict[str, Any]:
    """Create a run in an active experiment's project, for the user the client names."""
    experiment = mlflow_experiments.load_experiment(session, body.experiment_id)
    mlflow_experiments.check_active(experiment)
    tags = {tag.key: tag.value for tag in body.tags}
    name = body.run_name or tags.get("mlflow.runName") or None
    create = checked(RunCreate, name=name, project=experiment.project, tags=tags)
    run, _ = run_store.create_run(session, create)
    if body.start_time is not None:
        run.started_at = entities.from_ms(body.start_time)
    user = body.user_id or tags.get("mlflow.user") or None
    run.user_id = None if user is None else stored_text("user_id", user, 250)
    session.flush()
    return {"run": entities.runs_json(session, [run])[0]}


@router.get("/runs/get", dependencies=[READ], **documented(MlflowRunFound))
def runs_get(
    session: SessionDep, run_id: RunIdQuery = None, run_uuid: RunIdQuery = None
) -> dict[str, Any]:
    """One run with its latest metrics, params and tags."""
    run = entities.load_run(session, run_id or run_uuid)
    return {"run": entities.runs_json(session, [run])[0]}


@router.post("/runs/update", dependencies=[RUN_INGEST], **documented(MlflowRunUpdated))
def runs_update(body: RunUpdateBody, session: WriteSessionDep, caller: CallerDep) -> dict[str, Any]:
    """Set a run's status, end time or name (a run token: not the name)."""
    run = entities.load_run(session, body.run_id or body.run_uuid)
    check_writable(session, run, caller)
    entities.check_active(run)
    if caller.role is Role.run and body.run_name is not None:
        raise Forbidden("forbidden", "a run token may not rename its run")
    mlflow_runs.update(session, run, body)
    experiment = entities.experiment_ids_by_project(session, {run.project})
    return {"run_info": entities.run_info(run, experiment.get(run.project, ""))}


@router.post("/runs/delete", dependencies=[ADMIN], **documented(MlflowEmpty))
def runs_delete(body: RunRef, session: WriteSessionDep) -> dict[str, Any]:
    """Mark a run deleted (MLflow's soft delete: `runs/restore` undoes it)."""
    run = entities.load_run(session, body.run_id or body.run_uuid)
    mlflow_runs.set_stage(session, run, DELETED)
    return {}


@router.post("/runs/restore", dependencies=[ADMIN], **documented(MlflowEmpty))
def runs_restore(body: RunRef, session: WriteSessionDep) -> dict[str, Any]:
    """Make a deleted run active again."""
    run = entities.load_run(session, body.run_id or body.run_uuid)
    mlflow_runs.set_stage(session, run, ACTIVE)
    return {}


@router.post("/runs/delete-tag", dependencies=[RUN_INGEST], **documented(MlflowEmpty))
def runs_delete_tag(body: TagRef, session: WriteSessionDep, caller: CallerDep) -> dict[str, Any]:
    """Delete one tag of a run."""
    run = entities.load_run(session, body.run_id or body.run_uuid)
    check_own_run(caller, run.id)
    key = required_string("key", body.key)
    check_writable(session, run, caller)
    mlflow_runs.delete_tag(session, run, key)
    return {}


@router.post("/runs/log-inputs", dependencies=[RUN_INGEST], **documented(MlflowEmpty))
def runs_log_inputs(body: LogInputs, session: WriteSessionDep, caller: CallerDep) -> dict[str, Any]:
    """Record the datasets a run used (MLflow's dataset inputs)."""
    run = entities.load_run(session, body.run_id or body.run_uuid)
    check_own_run(caller, run.id)
    entities.check_active(run)
    inputs = datasets.parse_inputs(body.datasets)
    check_writable(session, run, caller)
    experiment = mlflow_experiments.experiment_of(session, run)
    datasets.log_inputs(session, run, experiment.id, inputs)
    return {}


@router.post("/runs/search", dependencies=[READ], **documented(MlflowRunPage))
def runs_search(body: RunSearch, session: SessionDep) -> dict[str, Any]:
    """Runs of experiments, filtered and ordered with MLflow's search syntax, paged."""
    return mlflow_runs.search_runs(session, body)


@router.post("/runs/log-batch", dependencies=[RUN_INGEST], **documented(MlflowEmpty))
def runs_log_batch(
    body: LogBatch, session: WriteSessionDep, settings: SettingsDep, caller: CallerDep
) -> dict[str, Any]:
    """Metrics, params and tags of one run, atomically (repeated steps: see README)."""
    keys = settings.max_keys_per_run
    mlflow_metrics.check_timestamps(body.metrics)
    return mlflow_runs.log(session, body, body.metrics, body.params, body.tags, caller, keys)


@router.post("/runs/log-metric", dependencies=[RUN_INGEST], **documented(MlflowEmpty))
def runs_log_metric(
    body: LogMetric, session: WriteSessionDep, settings: SettingsDep, caller: CallerDep
) -> dict[str, Any]:
    """One metric value (repeated steps: see README)."""
    metric = mlflow_metrics.log_metric_fields(body)
    return mlflow_runs.log(session, body, [metric], [], [], caller, settings.max_keys_per_run)


@router.post("/runs/log-parameter", dependencies=[RUN_INGEST], **documented(MlflowEmpty))
def runs_log_parameter(
    body: LogParam, session: WriteSessionDep, caller: CallerDep
) -> dict[str, Any]:
    """One param; a param cannot change its value."""
    param = KeyValue(key=required_string("key", body.key), value=body.value)
    return mlflow_runs.log(session, body, [], [param], [], caller)


@router.post("/runs/set-tag", dependencies=[RUN_INGEST], **documented(MlflowEmpty))
def runs_set_tag(body: LogParam, session: WriteSessionDep, caller: CallerDep) -> dict[str, Any]:
    """Set one tag of a run."""
    tag = KeyValue(key=required_string("key", body.key), value=body.value)
    return mlflow_runs.log(session, body, [], [], [tag], caller)
