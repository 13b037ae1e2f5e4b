"""Verdicts: which value of a parameter is best, how sure we are, how many runs would
settle the rest. `GET /sweeps/{id}/verdict` reads the sweep's runs itself (up to
MOMENTUM_MAX_GRID_SIZE of them); `GET /compare/verdict` takes the run ids."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from momentum.contract import METRIC_KEY_RE, Verdict, VerdictSummary
from momentum.contract.compare import Mode
from service import verdict
from service.api.compare import PARAM_NAME, By, ModeQuery, Threshold, parse_run_ids
from service.api.sweeps import SweepId, default_group_by
from service.auth import Scope, requires
from service.comparison import load_runs
from service.deps import SessionDep, app_state
from service.errors import invalid_field
from service.storage import compare as compare_store
from service.storage import sweeps as sweep_store

sweeps_router = APIRouter(prefix="/sweeps", tags=["sweeps"])
compare_router = APIRouter(prefix="/compare", tags=["compare"])

Key = Annotated[
    str,
    Query(
        pattern=METRIC_KEY_RE.pattern,
        description="Metric key: loss (the default), or e.g. accuracy with mode=max.",
    ),
]
SummaryQuery = Annotated[
    VerdictSummary,
    Query(
        description="Each run's one number, as compare/summary defines it; "
        "steps_to_threshold needs `threshold`."
    ),
]
Confidence = Annotated[
    float,
    Query(gt=0, lt=1, description="Of the interval; the tests' level is 1 - confidence."),
]


def _request(
    key: str,
    by: str,
    mode: Mode,
    summary: VerdictSummary,
    threshold: float | None,
    confidence: float,
) -> verdict.VerdictRequest:
    if summary == "steps_to_threshold" and threshold is None:
        raise invalid_field(
            "query", "threshold", "summary=steps_to_threshold needs a threshold, e.g. 0.1"
        )
    return verdict.VerdictRequest(key, by, mode, summary, threshold, confidence)


async def _verdict_run_ids(
    request: Request,
    run_ids: Annotated[str, Query(max_length=40_000, description="Comma-separated: 1,2,3")],
) -> list[int]:
    settings = app_state(request.app).settings
    # A verdict holds one number per run: a whole sweep's worth of runs is cheap.
    return parse_run_ids(run_ids, max(settings.max_grid_size, settings.max_compare_runs))


@compare_router.get("/verdict", response_model=Verdict, dependencies=[requires(Scope.read)])
def compare_verdict(
    session: SessionDep,
    run_ids: Annotated[list[int], Depends(_verdict_run_ids)],
    key: Key = "loss",
    by: By = "momentum",
    mode: ModeQuery = "min",
    summary: SummaryQuery = "tail_mean",
    threshold: Threshold = None,
    confidence: Confidence = 0.95,
) -> Verdict:
    """Which value of `by` is best across seeds, how sure we are, and what would settle it."""
    ask = _request(key, by, mode, summary, threshold, confidence)
    return verdict.judge(session, load_runs(session, run_ids), ask)


@sweeps_router.get(
    "/{sweep_id}/verdict", response_model=Verdict, dependencies=[requires(Scope.read)]
)
def sweep_verdict(
    sweep_id: SweepId,
    session: SessionDep,
    key: Key = "loss",
    by: Annotated[
        str | None,
        Query(pattern=PARAM_NAME, description="Default: momentum, else a field of the grid."),
    ] = None,
    mode: ModeQuery = "min",
    summary: SummaryQuery = "tail_mean",
    threshold: Threshold = None,
    confidence: Confidence = 0.95,
) -> Verdict:
    """The verdict on a sweep's runs, grouped by a grid field across seeds."""
    ask = _request(key, by or "", mode, summary, threshold, confidence)  # 422 before 404
    sweep = sweep_store.get_sweep(session, sweep_id)
    ask = replace(ask, by=by or default_group_by(sweep))
    result = verdict.judge(session, compare_store.sweep_runs(session, sweep_id), ask)
    result.sweep_id = sweep_id
    return result
