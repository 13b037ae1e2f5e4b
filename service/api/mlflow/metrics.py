"""MLflow's metric histories: one run's, paged, and several runs' sampled."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from momentum.contract.common import INT64_MIN
from momentum.contract.metrics import MAX_STEP
from service.api.mlflow.runs import RunIdQuery
from service.auth import Scope, requires
from service.deps import SessionDep
from service.mlflow import entities
from service.mlflow import metrics as mlflow_metrics
from service.mlflow.errors import invalid
from service.mlflow.schemas import MlflowMetricHistory, MlflowRunMetricHistory, documented
from service.mlflow.values import page_offset, page_size
from service.responses import FastJSONResponse

router = APIRouter()
READ = requires(Scope.read)
HISTORY_MAX_RESULTS = 25_000
BULK_MAX_RUNS, BULK_MAX_RESULTS = 100, 2500
MetricKeyQuery = Annotated[str, Query(examples=["loss"])]
# int64, as MLflow's proto has it: past that the databases overflow (a 500 once).
StepQuery = Annotated[int | None, Query(ge=INT64_MIN, le=MAX_STEP)]


@router.get("/metrics/get-history", dependencies=[READ], **documented(MlflowMetricHistory))
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
    size = page_size(max_results or HISTORY_MAX_RESULTS, HISTORY_MAX_RESULTS)
    start = page_offset(page_token)
    items, following = mlflow_metrics.history(session, run.id, metric_key, start, size)
    out: dict[str, Any] = {"metrics": items}
    if following is not None:
        out["next_page_token"] = str(following)
    return FastJSONResponse(out)


def _step_range(start_step: int | None, end_step: int | None) -> tuple[int, int]:
    """Both bounds or neither (every step), as MLflow has it."""
    if (start_step is None) != (end_step is None):
        raise invalid("If either start step or end step are specified, both must be specified.")
    start, end = start_step or 0, MAX_STEP if end_step is None else end_step
    if start > end:
        raise invalid(f"end_step must be greater than start_step, not {start}..{end}")
    return start, end


@router.get(
    "/metrics/get-history-bulk-interval",
    dependencies=[READ],
    **documented(MlflowRunMetricHistory),
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
    size = page_size(max_results, BULK_MAX_RESULTS)
    start, end = _step_range(start_step, end_step)
    items: list[dict[str, Any]] = []
    for raw in run_ids:
        run = entities.load_run(session, raw)
        items += mlflow_metrics.sampled(session, run.id, metric_key, start, end, size)
    return FastJSONResponse({"metrics": items})
