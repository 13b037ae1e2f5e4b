"""Comparing runs: curves side by side, a ranked summary, groups across seeds, CSV export."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel

from momentum.contract import CompareResult, CompareSummary, GroupComparison
from momentum.contract.common import METRIC_KEY_RE
from momentum.contract.compare import Mode, XAxis
from momentum.contract.metrics import MAX_STEP, MIN_STEP
from service import comparison, export
from service.api.fast import fast_read
from service.auth import Scope, requires
from service.deps import MaxPoints, SessionDep, SettingsDep, Step, app_state
from service.downsample import points_budget
from service.errors import ApiError, invalid_field
from service.models import MAX_ROW_ID
from service.responses import FastJSONResponse

router = APIRouter(tags=["compare"])

F = TypeVar("F", bound=Callable[..., Any])
MAX_KEYS = 50
PARAM_NAME = r"^[A-Za-z0-9_\-.]{1,250}$"


def _list_error(name: str, message: str) -> ApiError:
    return invalid_field("query", name, message)


def parse_run_ids(raw: str, cap: int, name: str = "run_ids") -> list[int]:
    """`1,2,3` -> [1, 2, 3] (repeats dropped, order kept); 422 naming the parameter."""
    items = [item.strip() for item in raw.split(",")]
    if not any(items):
        raise _list_error(name, "give at least one run id, e.g. run_ids=1,2,3")
    run_ids: dict[int, None] = {}  # ordered, repeats dropped
    for item in items:
        number = int(item) if item.isascii() and item.isdigit() and len(item) <= 10 else 0
        if not 1 <= number <= MAX_ROW_ID:
            raise _list_error(name, f"{item[:20]!r} is not a run id; give comma-separated integers")
        run_ids[number] = None
    if len(run_ids) > cap:
        raise _list_error(name, f"{len(run_ids)} runs; at most {cap} per request")
    return list(run_ids)


def parse_keys(raw: str, name: str = "keys") -> list[str]:
    keys: list[str] = []
    for key in raw.split(","):
        if not METRIC_KEY_RE.match(key):
            raise _list_error(
                name, f"{key!r} is not a metric key (1-250 of letters, digits, _ - . / space)"
            )
        if key not in keys:
            keys.append(key)
    if len(keys) > MAX_KEYS:
        raise _list_error(name, f"{len(keys)} keys; at most {MAX_KEYS} per request")
    return keys


async def _run_ids(
    request: Request,
    run_ids: Annotated[str, Query(max_length=20_000, description="Comma-separated: 1,2,3")],
) -> list[int]:
    return parse_run_ids(run_ids, app_state(request.app).settings.compare_run_cap)


RunIds = Annotated[list[int], Depends(_run_ids)]
Key = Annotated[str, Query(pattern=METRIC_KEY_RE.pattern, description="Metric key, e.g. loss")]
ModeQuery = Annotated[Mode, Query(description="min: lower is better (loss); max (accuracy).")]
Threshold = Annotated[
    float | None, Query(allow_inf_nan=False, description="Target value for steps_to_threshold.")
]
By = Annotated[
    str, Query(pattern=PARAM_NAME, description="momentum, lr, optimizer, or a key of params.")
]
GridPoints = Annotated[
    int, Query(ge=2, le=100_000, description="Most steps on the common grid of a group.")
]


@fast_read(router, "/compare", CompareResult)
def compare(
    session: SessionDep,
    settings: SettingsDep,
    run_ids: RunIds,
    keys: Annotated[str, Query(max_length=13_000, description="Comma-separated: loss,accuracy")],
    x: XAxis = "step",
    smoothing: Annotated[
        float | None, Query(ge=0, lt=1, description="Debiased EMA weight, as TensorBoard's.")
    ] = None,
    max_points: MaxPoints = None,
    start_step: Step = MIN_STEP,
    end_step: Step = MAX_STEP,
) -> Response:
    """Series of several runs, each on its own steps; smoothed at full resolution.
    `max_points` is per series; past MOMENTUM_MAX_COMPARE_RUNS runs it shrinks in
    proportion, so a response never carries more points than that many runs would."""
    budget = points_budget(
        max_points, settings.default_compare_points, settings.max_points_per_read
    )
    if len(run_ids) > settings.max_compare_runs:
        # More runs than MOMENTUM_MAX_COMPARE_RUNS (a whole sweep): the response holds no
        # more points than that many runs at `budget` would.
        budget = max(2, budget * settings.max_compare_runs // len(run_ids))
    runs = comparison.load_runs(session, run_ids)
    ask = comparison.CurveRequest(
        keys=parse_keys(keys),
        x=x,
        smoothing=smoothing,
        max_points=budget,
        start_step=start_step,
        end_step=end_step,
    )
    return FastJSONResponse(comparison.compare_curves(session, runs, ask))


def _analysis(name: str, model: type[BaseModel]) -> Callable[[F], F]:
    """GET /compare/<name>: an analysis of the runs' `key` series, answered as `model`."""
    return router.get(f"/compare/{name}", response_model=model, dependencies=[requires(Scope.read)])


@_analysis("summary", CompareSummary)
def compare_summary(
    session: SessionDep,
    run_ids: RunIds,
    key: Key,
    mode: ModeQuery = "min",
    threshold: Threshold = None,
    baseline: Annotated[
        int | None, Query(ge=1, le=MAX_ROW_ID, description="Run id speedups are relative to.")
    ] = None,
) -> CompareSummary:
    """Final, best, tail mean, steps to threshold, AUC, divergence and speedup; ranked."""
    if baseline is not None and baseline not in run_ids:
        raise _list_error("baseline", f"run {baseline} is not among run_ids; add it there")
    runs = comparison.load_runs(session, run_ids)
    ask = comparison.SummaryRequest(key, mode, threshold, baseline)
    return comparison.summarize_runs(session, runs, ask)


@_analysis("groups", GroupComparison)
def compare_groups(
    session: SessionDep,
    run_ids: RunIds,
    key: Key,
    by: By = "momentum",
    mode: ModeQuery = "min",
    threshold: Threshold = None,
    max_points: GridPoints = 1000,
) -> GroupComparison:
    """Runs grouped by a parameter: mean curve, std band, 95 % CI, and the best setting."""
    runs = comparison.load_runs(session, run_ids)
    ask = comparison.GroupRequest(key, by, mode, threshold, max_points)
    return comparison.group_runs(session, runs, ask)


@router.get(
    "/export.csv",
    dependencies=[requires(Scope.read)],
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "Long-format CSV."}},
)
def export_csv(
    request: Request,
    session: SessionDep,
    run_ids: RunIds,
    keys: Annotated[
        str | None, Query(max_length=13_000, description="Comma-separated; default: all.")
    ] = None,
) -> StreamingResponse:
    """Points of the runs as long-format CSV, streamed in short transactions."""
    runs = comparison.load_runs(session, run_ids)
    chosen = parse_keys(keys) if keys is not None else None
    plan = export.plan(session, runs, chosen)
    return StreamingResponse(
        export.stream_csv(app_state(request.app).sessions, plan),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="momentum-export.csv"'},
    )
