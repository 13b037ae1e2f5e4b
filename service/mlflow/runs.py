"""MLflow's run operations over our runs: search, update, and logging metrics, params
and tags (the routes are service/api/mlflow/runs.py)."""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from momentum.contract import RunUpdate, Status
from service.auth import Caller
from service.mlflow import entities, search
from service.mlflow import experiments as mlflow_experiments
from service.mlflow import metrics as mlflow_metrics
from service.mlflow.errors import checked, invalid, invalid_value, missing
from service.mlflow.schemas import KeyValue, RunRef, RunSearch, RunUpdateBody
from service.mlflow.values import page_offset, paged
from service.models import DELETED, Run, utcnow
from service.storage import metrics as metric_store
from service.storage import runs as run_store
from service.write_rights import check_own_run, check_writable


def update(session: Session, run: Run, body: RunUpdateBody) -> None:
    """Set the run's status (MLflow's name for it), end time or name."""
    status: Status | None = None
    if body.status is not None:
        status = entities.STATUS_FROM_MLFLOW.get(body.status)
        if status is None:
            raise invalid(
                f"status {body.status!r}: one of {', '.join(entities.STATUS_FROM_MLFLOW)}"
            )
    run_store.update_run(session, run, checked(RunUpdate, status=status, name=body.run_name))
    if body.end_time is not None and status is not None and status != Status.running:
        run.ended_at = entities.from_ms(body.end_time)
    session.flush()


def _run_value(run: Run, latest: dict[str, tuple[int, float | None]], kind: str, key: str) -> Any:
    """What a filter or an ordering names (`metrics.loss`, `params.lr`, `attributes.status`)."""
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
        "user_id": run.user_id or run.tags.get("mlflow.user"),
        "start_time": entities.to_ms(run.started_at or run.created_at),
        "end_time": entities.to_ms(run.ended_at),
        "created": entities.to_ms(run.created_at),
    }
    if key not in attributes:
        raise invalid(f"attribute {key!r}: one of {', '.join(attributes)}")
    return attributes[key]


def _page_size(max_results: int) -> int:
    if not 1 <= max_results <= search.SEARCH_MAX_RESULTS:
        raise invalid_value("max_results", max_results)
    return max_results


def search_runs(session: Session, body: RunSearch) -> dict[str, Any]:
    """Runs of the experiments, filtered and ordered with MLflow's search syntax, paged.
    MLflow's order: the given one, then `start_time DESC`, then `run_id ASC` (the runs
    are put in run-id order and sorted stably), so pages are stable. MLflow compares
    run ids as text, so "10" comes before "2" here too."""
    clauses = search.parse_filter(body.filter)
    order = search.parse_order_by(body.order_by) + [("attribute", "start_time", True)]
    offset, size = page_offset(body.page_token), _page_size(body.max_results)
    stages = mlflow_experiments.stages_of(body.run_view_type)
    projects = [
        mlflow_experiments.load_experiment(session, ident).project for ident in body.experiment_ids
    ]
    statement = select(Run).where(Run.project.in_(projects), Run.lifecycle_stage.in_(stages))
    runs = sorted(session.scalars(statement), key=lambda run: str(run.id))
    latest = metric_store.latest_values(session, [run.id for run in runs])

    def value(run: Run, kind: str, key: str) -> Any:
        return _run_value(run, latest.get(run.id, {}), kind, key)

    found = [run for run in runs if search.matches(clauses, functools.partial(value, run))]
    page, following = paged(search.ordered(found, order, value), offset, size)
    out: dict[str, Any] = {"runs": entities.runs_json(session, page)}
    if following is not None:
        out["next_page_token"] = following
    return out


def _set_tags(run: Run, tags: list[KeyValue]) -> None:
    if not tags:
        return
    merged = {**run.tags, **{tag.key: tag.value for tag in tags}}
    checked(RunUpdate, tags=merged)
    run.tags = merged
    if "mlflow.runName" in merged:
        run.name = checked(RunUpdate, name=merged["mlflow.runName"]).name


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
    checked(RunUpdate, params=merged)
    return merged


def log(
    session: Session,
    ref: RunRef,
    metrics: list[dict[str, Any]],
    params: list[KeyValue],
    tags: list[KeyValue],
    caller: Caller,
    max_keys: int | None = None,
) -> dict[str, Any]:
    """Metrics, params and tags of one run, all or none (MLflow answers `{}`)."""
    run = entities.load_run(session, ref.run_id or ref.run_uuid)
    check_own_run(caller, run.id)  # before any other answer about another run
    entities.check_active(run)
    parsed = [mlflow_metrics.parse_metric(metric) for metric in metrics]
    merged = _merged_params(run, params)
    check_writable(session, run, caller, merged)
    if merged is not None:
        entities.set_params(run, merged)
    _set_tags(run, tags)
    session.flush()
    mlflow_metrics.log_metrics(session, run, parsed, max_keys)
    return {}


def set_stage(session: Session, run: Run, stage: str) -> None:
    """MLflow's soft delete, and its restore."""
    run.lifecycle_stage = stage
    run.deleted_at = utcnow() if stage == DELETED else None
    session.flush()


def delete_tag(session: Session, run: Run, key: str) -> None:
    entities.check_active(run)
    if key not in run.tags:
        raise missing(f"No tag with name: {key} in run with id {run.id}")
    run.tags = {k: v for k, v in run.tags.items() if k != key}
    session.flush()
