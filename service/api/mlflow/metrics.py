"""MLflow's metric histories: one run's, paged, and several runs' (whole or sampled)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from momentum.contract.metrics import MAX_STEP, MIN_STEP
from service.api.mlflow.runs import RunIdQuery
from service.auth import Scope, requires
from service.deps import SessionDep
from service.mlflow import entities
from service.mlflow import metrics as mlflow_metrics
from service.mlflow.errors import invalid, invalid_value, missing_value, required_string
from service.mlflow.schemas import MlflowMetricHistory, MlflowRunMetricHistory, documented
from service.mlflow.values import int64_of, page_size, shown
from service.responses import FastJSONResponse

router = APIRouter()
READ = requires(Scope.read)
HISTORY_MAX_RESULTS = 25_000
BULK_MAX_RUNS, BULK_MAX_RESULTS = 100, 2500
MetricKeyQuery = Annotated[str | None, Query(examples=["loss"])]
# Whole numbers are read here, not by FastAPI, so a refusal has MLflow's wording.
IntQuery = Annotated[str | None, Query()]


def _int_of(name: str, raw: str | None) -> int | None:
    if raw is None:
        return None
    number = int64_of(raw)
    if number is None:
        raise invalid_value(name, raw)
    return number


def _step_token(token: str | None) -> int:
    """get-history's page token: the step the next page starts at (any int64)."""
    if not token:
        return MIN_STEP
    step = int64_of(token)
    if step is None:
        raise invalid(f"page_token {shown(token)!r} is not one this server gave out")
    return step


@router.get("/metrics/get-history", dependencies=[READ], **documented(MlflowMetricHistory))
def metrics_get_history(
    session: SessionDep,
    metric_key: MetricKeyQuery = None,
    run_id: RunIdQuery = None,
    run_uuid: str | None = None,
    max_results: IntQuery = None,
    page_token: str | None = None,
) -> Response:
    """Every value of one metric of a run, by step, paged with `max_results`/`page_token`."""
    key = required_string("metric_key", metric_key)
    run = entities.load_run(session, run_id or run_uuid)
    asked = _int_of("max_results", max_results)
    if asked is not None and asked <= 0:
        raise invalid(
            f"Invalid value {asked} for parameter 'max_results' supplied. "
            "It must be a positive integer."
        )
    size = page_size(asked or HISTORY_MAX_RESULTS, HISTORY_MAX_RESULTS)
    items, following = mlflow_metrics.history(session, run.id, key, _step_token(page_token), size)
    out: dict[str, Any] = {"metrics": items}
    if following is not None:
        out["next_page_token"] = str(following)
    return FastJSONResponse(out)


def _step_range(start_step: int | None, end_step: int | None) -> tuple[int, int]:
    """Both bounds or neither (every step), as MLflow has it."""
    if start_step is not None and end_step is not None:
        if start_step > end_step:
            raise invalid(
                "end_step must be greater than start_step. "
                f"Found start_step={start_step} and end_step={end_step}."
            )
        return start_step, end_step
    if start_step is not None or end_step is not None:
        raise invalid("If either start step or end step are specified, both must be specified.")
    return MIN_STEP, MAX_STEP


def _bulk_size(raw: str | None) -> int:
    size = _int_of("max_results", raw)
    if size is None:
        return BULK_MAX_RESULTS
    if not 1 <= size <= BULK_MAX_RESULTS:
        raise invalid(f"max_results must be between 1 and {BULK_MAX_RESULTS}.")
    return size


@router.get(
    "/metrics/get-history-bulk-interval",
    dependencies=[READ],
    **documented(MlflowRunMetricHistory),
)
def metrics_get_history_bulk_interval(
    session: SessionDep,
    run_ids: Annotated[list[str] | None, Query(examples=[["1"]])] = None,
    metric_key: MetricKeyQuery = None,
    start_step: IntQuery = None,
    end_step: IntQuery = None,
    max_results: IntQuery = None,
) -> Response:
    """One metric of up to 100 runs, at most `max_results` points per run sampled as
    MLflow samples them (the first point of each of `max_results` even buckets, and the
    last point)."""
    if not run_ids:
        raise missing_value("run_ids")
    if len(run_ids) > BULK_MAX_RUNS:
        raise invalid(
            f"GetMetricHistoryBulkInterval request must specify at most {BULK_MAX_RUNS} "
            f"run_ids. Received {len(run_ids)} run_ids."
        )
    key = required_string("metric_key", metric_key)
    size = _bulk_size(max_results)
    start, end = _step_range(_int_of("start_step", start_step), _int_of("end_step", end_step))
    runs = [entities.load_run(session, raw) for raw in run_ids]
    items: list[dict[str, Any]] = []
    for run in runs:
        items += mlflow_metrics.sampled(session, run.id, key, start, end, size)
    return FastJSONResponse({"metrics": items})


@router.get("/metrics/get-history-bulk", dependencies=[READ], **documented(MlflowRunMetricHistory))
def metrics_get_history_bulk(
    session: SessionDep,
    run_id: Annotated[list[str] | None, Query(examples=[["1"]])] = None,
    metric_key: MetricKeyQuery = None,
    max_results: IntQuery = None,
) -> Response:
    """One metric of up to 100 runs, whole: by run id, then timestamp, step and value,
    at most `max_results` (25,000) points in all."""
    if not run_id:
        raise invalid("GetMetricHistoryBulk request must specify at least one run_id.")
    if len(run_id) > BULK_MAX_RUNS:
        raise invalid(
            f"GetMetricHistoryBulk request cannot specify more than {BULK_MAX_RUNS} "
            f"run_ids. Received {len(run_id)} run_ids."
        )
    if metric_key is None:
        raise invalid("GetMetricHistoryBulk request must specify a metric_key.")
    limit = min(_int_of("max_results", max_results) or HISTORY_MAX_RESULTS, HISTORY_MAX_RESULTS)
    items: list[dict[str, Any]] = []
    # By run id as text, as MLflow orders its run ids; unknown ids answer nothing.
    for raw in sorted(set(run_id)):
        ident = entities.row_id(raw)
        if ident is None or len(items) >= limit:
            continue
        room = limit - len(items)
        items += mlflow_metrics.whole_history(session, ident, metric_key, room)
    return FastJSONResponse({"metrics": items})
