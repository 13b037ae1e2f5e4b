"""Momentum Monitor rows as MLflow entities, and MLflow's strings as our values."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from momentum.contract import Status
from momentum.contract.values import encode_value
from service.indexed_params import indexed_columns
from service.mlflow import search
from service.mlflow.errors import MlflowError, invalid, missing
from service.mlflow.schemas import ExperimentSearch
from service.mlflow.values import int64_of, page_offset, page_size, paged, shown
from service.models import MAX_ROW_ID, Experiment, Run
from service.storage import metrics as metric_store

STATUS_TO_MLFLOW = {
    Status.queued.value: "SCHEDULED",
    Status.running.value: "RUNNING",
    Status.succeeded.value: "FINISHED",
    Status.failed.value: "FAILED",
    Status.cancelled.value: "KILLED",
}
STATUS_FROM_MLFLOW = {mlflow: Status(ours) for ours, mlflow in STATUS_TO_MLFLOW.items()}
DEFAULT_EXPERIMENT_ID = 0
_EXACT_INT = 2**53


def to_ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(round(moment.timestamp() * 1000))


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def param_in(text: str) -> Any:
    """An MLflow param (always text) as stored: a finite number when the text is exactly
    that number's JSON (so `/api/v1` filters and compares it like a native param), else
    the text. Either way `param_out` gives the same text back."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if is_number and math.isfinite(value) and abs(value) < _EXACT_INT and json.dumps(value) == text:
        return value
    return text


def param_out(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def set_params(run: Run, params: dict[str, Any]) -> None:
    """Params and their indexed copies (service/indexed_params.py)."""
    run.params = params
    for column, value in indexed_columns(params).items():
        setattr(run, column, value)


def _row_id(raw: str) -> int | None:
    """An id a row of ours can have (a positive 32-bit integer), else None."""
    ident = int64_of(raw)
    return ident if ident is not None and 0 <= ident <= MAX_ROW_ID else None


def run_id_of(raw: str | None) -> int:
    if not raw:
        raise invalid("run_id is required")
    ident = _row_id(raw)
    if ident is None:  # no run has it: what an unknown id gets
        raise missing(f"Run with id={shown(raw)} not found")
    return ident


def load_run(session: Session, raw: str | None) -> Run:
    run = session.get(Run, run_id_of(raw))
    if run is None:
        raise missing(f"Run with id={raw} not found")
    return run


def experiment_json(experiment: Experiment) -> dict[str, Any]:
    created = to_ms(experiment.created_at)
    return {
        "experiment_id": str(experiment.id),
        "name": experiment.name,
        "artifact_location": "",
        "lifecycle_stage": "active",
        "creation_time": created,
        "last_update_time": created,
        "tags": [],
    }


def load_experiment(session: Session, raw: str | None) -> Experiment:
    if raw is None or raw == "":
        raise invalid("experiment_id is required")
    ident = _row_id(raw)
    found = None if ident is None else session.get(Experiment, ident)
    if found is None:
        raise missing(f"No Experiment with id={shown(raw)} exists")
    return found


def experiment_by_name(session: Session, name: str) -> Experiment | None:
    if "\x00" in name:  # no name holds NUL, and PostgreSQL fails on it: an unknown name
        return None
    statement = select(Experiment).where(Experiment.name == name)
    return session.scalars(statement).one_or_none()


def experiment_ids_by_project(session: Session, projects: set[str]) -> dict[str, str]:
    statement = select(Experiment.project, Experiment.id).where(Experiment.project.in_(projects))
    return {project: str(ident) for project, ident in session.execute(statement)}


def search_experiments(session: Session, body: ExperimentSearch) -> dict[str, Any]:
    """Experiments whose `name` or `experiment_id` match the filter, paged."""
    clauses = search.parse_filter(body.filter)
    offset, size = (
        page_offset(body.page_token),
        page_size(body.max_results, search.SEARCH_MAX_RESULTS),
    )
    if body.view_type == "DELETED_ONLY":
        return {"experiments": []}
    found = []
    for experiment in session.scalars(select(Experiment).order_by(Experiment.id)):
        attributes = {"name": experiment.name, "experiment_id": str(experiment.id)}

        def lookup(kind: str, key: str, values: dict[str, str] = attributes) -> Any:
            return values.get(key) if kind == "attribute" else None

        if search.matches(clauses, lookup):
            found.append(experiment_json(experiment))
    page, following = paged(found, offset, size)
    out: dict[str, Any] = {"experiments": page}
    if following is not None:
        out["next_page_token"] = following
    return out


def create_experiment(session: Session, name: str) -> Experiment:
    """A new experiment for the project `name`; its project's existing runs join it."""
    taken = select(Experiment.id).where((Experiment.name == name) | (Experiment.project == name))
    if session.scalar(taken) is not None:
        raise MlflowError(
            400, "RESOURCE_ALREADY_EXISTS", f"Experiment(name={name}) already exists."
        )
    experiment = Experiment(name=name, project=name)
    session.add(experiment)
    session.flush()
    return experiment


def artifact_uri(experiment_id: str, run_id: int) -> str:
    """Where MLflow's client sends a run's artifacts: the proxied artifact API of the
    service it tracks to (service/api/mlflow/artifacts.py); the files live in the run's
    folder whatever the experiment (a run outside any experiment shows experiment 0)."""
    return f"mlflow-artifacts:/{experiment_id or DEFAULT_EXPERIMENT_ID}/{run_id}/artifacts"


def run_info(run: Run, experiment_id: str) -> dict[str, Any]:
    info: dict[str, Any] = {
        "run_id": str(run.id),
        "run_uuid": str(run.id),
        "run_name": run.name,
        "experiment_id": experiment_id,
        "user_id": run.tags.get("mlflow.user", ""),
        "status": STATUS_TO_MLFLOW[run.status],
        "start_time": to_ms(run.started_at or run.created_at),
        "artifact_uri": artifact_uri(experiment_id, run.id),
        "lifecycle_stage": "active",
    }
    if run.ended_at is not None:
        info["end_time"] = to_ms(run.ended_at)
    return info


def run_json(
    run: Run, experiment_id: str, latest: dict[str, tuple[int, float | None]]
) -> dict[str, Any]:
    updated = to_ms(run.updated_at)
    metrics = [
        {"key": key, "value": encode_value(value), "timestamp": updated, "step": step}
        for key, (step, value) in sorted(latest.items())
    ]
    params = [{"key": k, "value": param_out(v)} for k, v in sorted(run.params.items())]
    tags = [{"key": k, "value": v} for k, v in sorted(run.tags.items())]
    if "mlflow.runName" not in run.tags:
        tags.append({"key": "mlflow.runName", "value": run.name})
    return {
        "info": run_info(run, experiment_id),
        "data": {"metrics": metrics, "params": params, "tags": tags},
        "inputs": {},
    }


def runs_json(session: Session, runs: list[Run]) -> list[dict[str, Any]]:
    """The runs as MLflow's, with their experiment ids and latest metrics (two queries)."""
    experiments = experiment_ids_by_project(session, {run.project for run in runs})
    latest = metric_store.latest_values(session, [run.id for run in runs])
    return [run_json(run, experiments.get(run.project, ""), latest.get(run.id, {})) for run in runs]
