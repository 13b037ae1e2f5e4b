"""Jobs: submit a training config or an entry point's params, list, get, cancel, retry.
The worker side is in workers.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Path, Query
from sqlalchemy.orm import Session

from momentum.contract import ErrorResponse, JobCreate, JobPublic, JobStop, Page, Status
from service.auth import Scope, requires
from service.deps import PageDep, SessionDep, SettingsDep, WriteSessionDep
from service.entry_point_params import ParamsRefused, job_params
from service.errors import unprocessable
from service.models import MAX_ROW_ID, EntryPoint, Job
from service.storage import early_stop
from service.storage import entry_points as entry_store
from service.storage import jobs as job_store

router = APIRouter(prefix="/jobs", tags=["jobs"])

JobId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="The job's id.")]
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorResponse, "description": "The job's status does not allow it."}
}


F = TypeVar("F", bound=Callable[..., Any])


def to_public(jobs: list[Job]) -> list[JobPublic]:
    return [_public(job) for job in jobs]


def _public(job: Job) -> JobPublic:
    if job.entry_point is None:
        return JobPublic.model_validate(job)
    # Its `config` column holds `{}`: an entry-point job has params, not a config.
    shown = {name: getattr(job, name) for name in JobPublic.model_fields if name != "config"}
    return JobPublic.model_validate({**shown, "config": None})


@router.post("", status_code=201, response_model=JobPublic, dependencies=[requires(Scope.admin)])
def submit_job(body: JobCreate, session: WriteSessionDep, settings: SettingsDep) -> JobPublic:
    """Queue a job of the built-in trainer (`config`) or of a registered entry point
    (`entry_point`, `params` checked against its current definition, defaults filled in);
    its run is created at once, queued, with the full config or params as params."""
    spec = job_store.JobSpec(
        name=body.name,
        project=body.project,
        tags=body.tags,
        max_attempts=body.max_attempts or settings.job_max_attempts,
    )
    work: job_store.Work
    if body.entry_point is not None:
        entry = current_definition(session, body.entry_point)
        try:
            params = job_params(entry_store.definition(entry), body.params)
        except ParamsRefused as exc:
            raise unprocessable(str(exc), exc.items) from None
        work = job_store.EntryPointWork(entry.name, entry.digest, params)
    else:
        assert body.config is not None  # JobCreate takes exactly one of them
        work = body.config
    return to_public([job_store.create_job(session, work, spec)])[0]


def current_definition(session: Session, name: str) -> EntryPoint:
    """The entry point's current definition; a 422 at `entry_point` if none is registered."""
    entry = entry_store.current(session, name)
    if entry is None:
        msg = f"no entry point {name!r} is registered (GET /api/v1/entry-points lists them)"
        raise unprocessable(
            f"entry_point: {msg}", [{"loc": ["entry_point"], "msg": msg, "type": "value_error"}]
        )
    return entry


@router.get("", response_model=Page[JobPublic], dependencies=[requires(Scope.read)])
def list_jobs(
    session: SessionDep,
    page: PageDep,
    status: Status | None = None,
    sweep_id: Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)] = None,
) -> Page[JobPublic]:
    """List jobs, newest first, filtered by status and sweep."""
    jobs, total = job_store.list_jobs(session, status, sweep_id, page.limit, page.offset)
    return page.of(to_public(jobs), total)


# `:int` so that GET /jobs/claim is the claim route's 405 (Allow: POST), not a bad job id.
@router.get("/{job_id:int}", response_model=JobPublic, dependencies=[requires(Scope.read)])
def get_job(job_id: JobId, session: SessionDep) -> JobPublic:
    """One job: status, attempts, progress, error, run."""
    return to_public([job_store.get_job(session, job_id)])[0]


def _job_action(name: str) -> Callable[[F], F]:
    """An admin's POST /jobs/{id}/<name>: the job, or 409 if its status does not allow it."""
    return router.post(
        f"/{{job_id}}/{name}",
        response_model=JobPublic,
        dependencies=[requires(Scope.admin)],
        responses=CONFLICT,
    )


@_job_action("cancel")
def cancel_job(job_id: JobId, session: WriteSessionDep) -> JobPublic:
    """Cancel: a queued job at once; a running one when its worker next heartbeats."""
    job = job_store.get_job(session, job_id, lock=True)
    return to_public([job_store.cancel_job(session, job)])[0]


@_job_action("retry")
def retry_job(job_id: JobId, session: WriteSessionDep, settings: SettingsDep) -> JobPublic:
    """Queue a failed or cancelled job again; its run restarts from step 0."""
    job = job_store.get_job(session, job_id, lock=True)
    return to_public([job_store.retry_job(session, job, settings.job_max_attempts)])[0]


@_job_action("stop")
def stop_job(job_id: JobId, session: WriteSessionDep, body: JobStop | None = None) -> JobPublic:
    """Stop a running job early, keeping its result: it ends `succeeded` with
    `early_stopped` (rule `manual`) once its worker hears of it; 409 unless running."""
    job = job_store.get_job(session, job_id, lock=True)
    reason = body.reason if body is not None else None
    return to_public([early_stop.stop_by_hand(session, job, reason)])[0]
