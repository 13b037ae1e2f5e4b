"""Sweeps: a grid over any training config field, or over an entry point's params; one
job per combination."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, cast

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from sqlalchemy.orm import Session

from momentum.contract import (
    EarlyStop,
    ErrorResponse,
    GridError,
    GroupComparison,
    Objective,
    Page,
    Status,
    Strategy,
    SweepCreate,
    SweepPublic,
    expand_grid,
    sweep_status,
)
from service import comparison
from service.api.compare import PARAM_NAME, GridPoints, Key, ModeQuery, Threshold
from service.api.jobs import current_definition
from service.auth import Scope, requires
from service.db import transaction
from service.deps import PageDep, SessionDep, SettingsDep, WriteSessionDep, app_state
from service.entry_point_params import sweep_params
from service.errors import unprocessable
from service.models import MAX_ROW_ID, Sweep
from service.search import checks
from service.storage import compare as compare_store
from service.storage import entry_points as entry_store
from service.storage import rungs as rung_store
from service.storage import sweeps as sweep_store

router = APIRouter(prefix="/sweeps", tags=["sweeps"])

SweepId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="The sweep's id.")]


def to_public(session: Session, sweeps: list[Sweep]) -> list[SweepPublic]:
    jobs = sweep_store.jobs_by_sweep(session, [sweep.id for sweep in sweeps])
    out = []
    for sweep in sweeps:
        pairs = jobs.get(sweep.id, [])
        counts = dict.fromkeys(Status, 0)
        for _, status in pairs:
            counts[status] += 1
        out.append(
            SweepPublic(
                id=sweep.id,
                name=sweep.name,
                entry_point=sweep.entry_point,
                base=sweep.base,
                grid=sweep.grid,
                status=_status(sweep, counts),
                job_ids=[job_id for job_id, _ in pairs],
                counts=counts,
                created_at=sweep.created_at,
                updated_at=sweep.updated_at,
                strategy=cast(Strategy, sweep.strategy),
                space=sweep.space,
                objective=Objective.model_validate(sweep.objective or {}),
                early_stop=EarlyStop.model_validate(sweep.early_stop) if sweep.early_stop else None,
                max_jobs=sweep.max_jobs if sweep.max_jobs is not None else len(pairs),
                parallelism=sweep.parallelism,
                best=rung_store.best_trial(session, sweep),
                trials=len(pairs),
                steps_spent=rung_store.steps_spent(session, sweep.id),
                rungs=rung_store.sweep_rungs(session, sweep.id),
            )
        )
    return out


def _status(sweep: Sweep, counts: dict[Status, int]) -> Status:
    """From its jobs' statuses; a sweep that will create more jobs has not ended."""
    status = sweep_status(counts)
    return Status.running if sweep.searching and status.is_terminal else status


@dataclass(frozen=True)
class SweepPlan:
    body: SweepCreate
    max_jobs: int
    max_attempts: int


def _plan_sweep(body: SweepCreate, settings: SettingsDep, request: Request) -> SweepPlan:
    """The request validated (its grid expanded, its space and budget checked) before
    any transaction opens: a write session takes SQLite's write lock as it opens, and
    every other writer would wait."""
    definition = None
    if body.entry_point is not None:
        with transaction(app_state(request.app).sessions, write=False) as session:
            definition = entry_store.definition(current_definition(session, body.entry_point))
    problems = checks.space_problems(body, definition) + checks.key_problems(body, definition)
    if problems:
        raise unprocessable(str(GridError(problems)), GridError(problems).items)
    base = {**body.base, **checks.probe_point(body.space or {})}
    try:
        if definition is None:
            size = len(expand_grid(base, body.grid, settings.max_grid_size))
        else:
            size = len(sweep_params(definition, base, body.grid, settings.max_grid_size))
        problems = checks.budget_problems(body, size, settings.max_grid_size)
        if problems:
            raise GridError(problems)
    except GridError as exc:
        raise unprocessable(str(exc), exc.items) from None
    max_jobs = body.max_jobs if body.max_jobs is not None else size
    return SweepPlan(body, max_jobs, body.max_attempts or settings.job_max_attempts)


SweepPlanDep = Annotated[SweepPlan, Depends(_plan_sweep)]


@router.post("", status_code=201, response_model=SweepPublic, dependencies=[requires(Scope.admin)])
def create_sweep(plan: SweepPlanDep, request: Request) -> SweepPublic:
    """Queue one job per grid combination (every combination validated first), or the
    first trials of a random or tpe search (its space, budget and objective checked)."""
    # The transaction opens here, not as a WriteSessionDep: FastAPI solves every
    # dependency before it reports a body's validation errors, so a session dependency
    # would take the write lock for a body about to be refused.
    with transaction(app_state(request.app).sessions, write=True) as session:
        sweep = sweep_store.create_sweep(session, plan.body, plan.max_jobs, plan.max_attempts)
        return to_public(session, [sweep])[0]


@router.get("", response_model=Page[SweepPublic], dependencies=[requires(Scope.read)])
def list_sweeps(session: SessionDep, page: PageDep) -> Page[SweepPublic]:
    """List sweeps, newest first, with their jobs' counts by status."""
    sweeps, total = sweep_store.list_sweeps(session, page.limit, page.offset)
    return page.of(to_public(session, sweeps), total)


@router.get("/{sweep_id}", response_model=SweepPublic, dependencies=[requires(Scope.read)])
def get_sweep(sweep_id: SweepId, session: SessionDep) -> SweepPublic:
    """One sweep with its job ids and counts by status."""
    return to_public(session, [sweep_store.get_sweep(session, sweep_id)])[0]


@router.post("/{sweep_id}/cancel", response_model=SweepPublic, dependencies=[requires(Scope.admin)])
def cancel_sweep(sweep_id: SweepId, session: WriteSessionDep) -> SweepPublic:
    """Cancel its queued jobs at once and ask its running jobs' workers to stop."""
    sweep = sweep_store.get_sweep(session, sweep_id)
    sweep_store.cancel_sweep(session, sweep)
    return to_public(session, [sweep])[0]


@router.delete(
    "/{sweep_id}",
    status_code=204,
    dependencies=[requires(Scope.admin)],
    responses={409: {"model": ErrorResponse, "description": "It still has running jobs."}},
)
def delete_sweep(sweep_id: SweepId, session: WriteSessionDep) -> Response:
    """Delete the sweep and its jobs; its runs and their metrics are kept, detached."""
    sweep_store.delete_sweep(session, sweep_store.get_sweep(session, sweep_id))
    return Response(status_code=204)


def default_group_by(sweep: Sweep) -> str:
    """momentum if the grid varies it, else the first varied field other than seed."""
    fields = sorted(name for name in sweep.grid if name != "seed")
    return "momentum" if "momentum" in fields or not fields else fields[0]


@router.get(
    "/{sweep_id}/summary", response_model=GroupComparison, dependencies=[requires(Scope.read)]
)
def sweep_summary(
    sweep_id: SweepId,
    session: SessionDep,
    key: Key,
    by: Annotated[
        str | None,
        Query(pattern=PARAM_NAME, description="Default: momentum, else a field of the grid."),
    ] = None,
    mode: ModeQuery = "min",
    threshold: Threshold = None,
    max_points: GridPoints = 1000,
) -> GroupComparison:
    """The sweep's runs grouped by a grid field across seeds, with the best setting."""
    sweep = sweep_store.get_sweep(session, sweep_id)
    runs = compare_store.sweep_runs(session, sweep_id)
    ask = comparison.GroupRequest(key, by or default_group_by(sweep), mode, threshold, max_points)
    result = comparison.group_runs(session, runs, ask)
    result.sweep_id = sweep_id
    return result
