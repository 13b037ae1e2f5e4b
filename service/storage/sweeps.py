"""Data access for sweeps: one job per grid combination, their counts, cancel, delete.

A sweep's status is derived from its jobs' statuses when read, never stored: jobs of
one sweep end concurrently on different workers, and a stored summary would race.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from momentum.contract import Status, SweepCreate
from momentum.contract.search import DEFAULT_PARALLELISM
from service import events
from service.domain_errors import Conflict, NotFound
from service.models import Job, Run, Sweep, Worker, utcnow
from service.storage import search as search_store
from service.storage.jobs import request_cancel


def create_sweep(session: Session, body: SweepCreate, max_jobs: int, max_attempts: int) -> Sweep:
    """The sweep and its first jobs: every grid combination (in grid order) unless
    `parallelism` limits them, or the first `parallelism` trials of a search."""
    now = utcnow()
    searches = body.strategy != "grid"
    sweep = Sweep(
        name=body.name,
        base=body.base,
        grid=body.grid,
        entry_point=body.entry_point,
        strategy=body.strategy,
        space={name: spec.model_dump() for name, spec in (body.space or {}).items()} or None,
        objective=body.objective.model_dump(),
        early_stop=body.early_stop.model_dump() if body.early_stop is not None else None,
        max_jobs=max_jobs,
        parallelism=body.parallelism or (DEFAULT_PARALLELISM if searches else None),
        search_seed=body.search_seed,
        searching=True,
        job_defaults={"project": body.project, "tags": body.tags, "max_attempts": max_attempts},
        created_at=now,
        updated_at=now,
    )
    session.add(sweep)
    session.flush()
    search_store.top_up(session, sweep)
    return sweep


def get_sweep(session: Session, sweep_id: int) -> Sweep:
    sweep = session.get(Sweep, sweep_id)
    if sweep is None:
        raise NotFound("sweep", sweep_id)
    return sweep


def list_sweeps(session: Session, limit: int, offset: int) -> tuple[list[Sweep], int]:
    """Newest first."""
    total = session.scalar(select(func.count()).select_from(Sweep))
    page = select(Sweep).order_by(Sweep.id.desc()).limit(limit).offset(offset)
    return list(session.scalars(page)), int(total or 0)


def jobs_by_sweep(session: Session, sweep_ids: list[int]) -> dict[int, list[tuple[int, Status]]]:
    """Each sweep's (job id, status) pairs in id order, in one query."""
    out: dict[int, list[tuple[int, Status]]] = defaultdict(list)
    if not sweep_ids:
        return out
    rows = session.execute(
        select(Job.sweep_id, Job.id, Job.status).where(Job.sweep_id.in_(sweep_ids)).order_by(Job.id)
    )
    for sweep_id, job_id, status in rows:
        assert sweep_id is not None
        out[sweep_id].append((job_id, Status(status)))
    return out


def _sweep_jobs(session: Session, sweep_id: int, statuses: list[Status]) -> list[Job]:
    statement = (
        select(Job)
        .where(Job.sweep_id == sweep_id, Job.status.in_([s.value for s in statuses]))
        .order_by(Job.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return list(session.scalars(statement))


def cancel_sweep(session: Session, sweep: Sweep) -> int:
    """Cancel every job not yet ended; returns how many were queued or running."""
    now = utcnow()
    jobs = _sweep_jobs(session, sweep.id, [Status.queued, Status.running])
    for job in jobs:
        request_cancel(session, job, now)
    # No more trials. Updating the row waits for a top-up in progress (PostgreSQL);
    # the jobs it committed meanwhile are cancelled by the second pass.
    sweep.searching = False
    sweep.updated_at = now
    session.flush()
    late = _sweep_jobs(session, sweep.id, [Status.queued])
    for job in late:
        request_cancel(session, job, now)
    search_store.settle(session, sweep)
    session.flush()
    return len(jobs) + len(late)


def delete_sweep(session: Session, sweep: Sweep) -> None:
    """Delete the sweep and its jobs; its runs are kept, with their metrics, detached.

    A detached run loses its `sweep_id` and its `job-<id>` external id (a future job may
    reuse the id on SQLite). A sweep with running jobs is refused: cancel it first.
    """
    # Lock every job of the sweep, not only the running ones: a claim racing with this
    # delete must finish first, so its job is seen running and the delete refused.
    jobs = _sweep_jobs(session, sweep.id, list(Status))
    running = [job for job in jobs if job.status == Status.running]
    if running:
        ids = ", ".join(str(job.id) for job in running)
        raise Conflict(
            f"sweep {sweep.id} has running jobs ({ids}): cancel it and wait for them to stop",
        )
    for job in jobs:  # the bulk DELETE below passes the ORM hook by
        events.record_job(session, job, deleted=True)
    job_ids = select(Job.id).where(Job.sweep_id == sweep.id).scalar_subquery()
    session.execute(
        update(Worker).where(Worker.current_job_id.in_(job_ids)).values(current_job_id=None)
    )
    run_ids = select(Job.run_id).where(Job.sweep_id == sweep.id).scalar_subquery()
    session.execute(
        update(Run)
        .where(Run.id.in_(run_ids))
        .values(sweep_id=None, external_id=None, updated_at=utcnow())
    )
    session.execute(update(Run).where(Run.sweep_id == sweep.id).values(sweep_id=None))
    session.execute(delete(Job).where(Job.sweep_id == sweep.id))
    session.delete(sweep)
    session.flush()
