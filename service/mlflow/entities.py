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
from service.mlflow import datasets
from service.mlflow.errors import invalid, missing, missing_value
from service.mlflow.values import int64_of, shown
from service.models import ACTIVE, MAX_ROW_ID, Experiment, Run
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


def row_id(raw: str) -> int | None:
    """An id a row of ours can have (a positive 32-bit integer), else None."""
    ident = int64_of(raw)
    return ident if ident is not None and 0 <= ident <= MAX_ROW_ID else None


def run_id_of(raw: str | None) -> int:
    if not raw:
        raise missing_value("run_id")
    ident = row_id(raw)
    if ident is None:  # no run has it: what an unknown id gets
        raise missing(f"Run with id={shown(raw)} not found")
    return ident


def load_run(session: Session, raw: str | None) -> Run:
    run = session.get(Run, run_id_of(raw))
    if run is None:
        raise missing(f"Run with id={raw} not found")
    return run


def check_active(run: Run) -> None:
    """MLflow writes only to active runs (a deleted one must be restored first)."""
    if run.lifecycle_stage != ACTIVE:
        raise invalid(
            f"The run {run.id} must be in the 'active' state. "
            f"Current state is {run.lifecycle_stage}."
        )


def experiment_ids_by_project(session: Session, projects: set[str]) -> dict[str, str]:
    statement = select(Experiment.project, Experiment.id).where(Experiment.project.in_(projects))
    return {project: str(ident) for project, ident in session.execute(statement)}


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
        "user_id": run.user_id or run.tags.get("mlflow.user", ""),
        "status": STATUS_TO_MLFLOW[run.status],
        "start_time": to_ms(run.started_at or run.created_at),
        "artifact_uri": artifact_uri(experiment_id, run.id),
        "lifecycle_stage": run.lifecycle_stage,
    }
    if run.ended_at is not None:
        info["end_time"] = to_ms(run.ended_at)
    return info


def run_json(
    run: Run,
    experiment_id: str,
    latest: dict[str, tuple[int, float | None]],
    inputs: dict[str, Any] | None = None,
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
        "inputs": inputs or {},
    }


def runs_json(session: Session, runs: list[Run]) -> list[dict[str, Any]]:
    """The runs as MLflow's, with their experiment ids and latest metrics (two queries)."""
    experiments = experiment_ids_by_project(session, {run.project for run in runs})
    latest = metric_store.latest_values(session, [run.id for run in runs])
    inputs = datasets.inputs_of(session, [run.id for run in runs])
    return [
        run_json(run, experiments.get(run.project, ""), latest.get(run.id, {}), inputs.get(run.id))
        for run in runs
    ]
