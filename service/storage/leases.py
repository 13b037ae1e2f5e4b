"""The worker protocol's storage: claims under fenced leases, heartbeats, outcomes, reaping.

A claim hands out a fresh random `lease_token` valid until `lease_expires_at`. Every
later call must present it; once the lease lapsed and the job was taken back (by the
reaper or by a claim), the token is cleared or replaced, and the old holder gets 409.
A lease that lapsed but was not taken back yet is still honoured: the worker was only
late, and nobody else owns the job.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from momentum.contract import Claim, JobComplete, JobFail, JobHeartbeat, Status
from service.domain_errors import LeaseNotHeld
from service.models import Job, Run, Worker, utcnow
from service.storage import early_stop
from service.storage import rungs as rung_store
from service.storage import search as search_store
from service.storage.entry_points import declared_total
from service.storage.jobs import ensure_run, get_job, transition


def claim(session: Session, body: Claim, lease_s: float) -> tuple[Job, str] | None:
    """The oldest queued job this worker can run, now leased to it; None if there is none."""
    now = utcnow()
    reap_lapsed_leases(session, now)
    search_store.top_up_all(session)  # a restarted service or a replica continues sweeps
    job = session.scalars(next_claimable(body)).first()
    if job is None:
        _saw_worker(session, body, now, None)
        return None
    token = secrets.token_urlsafe(32)
    job.attempts += 1
    job.lease_token, job.lease_owner = token, body.worker_id
    job.lease_expires_at = now + timedelta(seconds=lease_s)
    job.cancel_requested = False
    job.progress_step = job.progress_total = None
    ensure_run(session, job)
    transition(session, job, Status.running, now)
    session.flush()
    _saw_worker(session, body, now, job.id)
    return job, token


def next_claimable(body: Claim) -> Select[Job]:
    """The oldest queued job this worker can run: a built-in job whose framework it has
    and whose device it fits, or an entry-point job whose exact name and digest it
    listed (a worker listing none never gets one).

    SKIP LOCKED (PostgreSQL): concurrent claimers pass over each other's rows instead of
    waiting on them. SQLite renders no FOR UPDATE; its BEGIN IMMEDIATE serializes claims.
    """
    built_in: list[ColumnElement[bool]] = [
        Job.entry_point.is_(None),
        Job.framework.in_(body.frameworks),
    ]
    if body.device != "cuda":
        built_in.append(Job.device != "cuda")  # cpu and auto jobs run anywhere
    runnable = [and_(*built_in)]
    runnable += [
        and_(Job.entry_point == ref.name, Job.entry_point_digest == ref.digest)
        for ref in body.entry_points
    ]
    return (
        select(Job)
        .where(Job.status == Status.queued.value, or_(*runnable))
        .order_by(Job.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )


def _saw_worker(session: Session, body: Claim, now: datetime, job_id: int | None) -> None:
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    values: dict[str, Any] = {
        "device": body.device,
        "frameworks": list(body.frameworks),
        "last_seen_at": now,
        "current_job_id": job_id,
    }
    statement = insert(Worker).values(id=body.worker_id, first_seen_at=now, **values)
    session.execute(statement.on_conflict_do_update(index_elements=[Worker.id], set_=values))


def held_job(session: Session, job_id: int, token: str) -> Job:
    """The job, locked, if `token` is its current lease; LeaseNotHeld otherwise (fencing)."""
    job = get_job(session, job_id, lock=True)
    current = job.lease_token
    if (
        job.status != Status.running
        or current is None
        or not hmac.compare_digest(current.encode(), token.encode())
    ):
        raise LeaseNotHeld(job_id, job.status)
    return job


def heartbeat(session: Session, job_id: int, body: JobHeartbeat, lease_s: float) -> Job:
    """Extend the lease, record progress, let a sweep judge the job; the caller answers
    with `cancel_requested` and whether it was stopped early (`early_stopped`)."""
    job = held_job(session, job_id, body.lease_token)
    now = utcnow()
    job.lease_expires_at = now + timedelta(seconds=lease_s)
    if body.step is not None:
        job.progress_step = body.step
    if body.total is not None:
        job.progress_total = body.total
    job.updated_at = now
    if job.lease_owner is not None:
        worker = session.get(Worker, job.lease_owner)
        if worker is not None:
            worker.last_seen_at = now
    run = session.get(Run, job.run_id) if job.run_id is not None else None
    if run is not None:
        run.last_heartbeat_at = now  # keeps the silent-run reaper off a job's run
    session.flush()
    if job.early_stopped is None and not job.cancel_requested:
        early_stop.judge_at_heartbeat(session, job)
    return job


def complete(session: Session, job_id: int, body: JobComplete) -> Job:
    """Succeeded, even if a cancel was requested meanwhile: the result exists. A job
    stopped early keeps its verdict and shows the steps it did."""
    job = held_job(session, job_id, body.lease_token)
    job.summary = body.summary
    if job.early_stopped is not None:
        early_stop.end_stopped(session, job, utcnow(), diverged=body.diverged)
    else:
        job.error = None
        # A succeeded job has done all its steps: the last heartbeat (if one came at
        # all, for a job quicker than the heartbeat interval) predates the last steps.
        if job.progress_total is None:
            job.progress_total = declared_total(session, job)
        job.progress_step = job.progress_total
        rung_store.judge(session, job, ended=True)  # its rungs count for the others
        transition(session, job, Status.succeeded, utcnow(), diverged=body.diverged)
    session.flush()
    _sweep_slot_freed(session, job)
    return job


def fail(session: Session, job_id: int, body: JobFail) -> Job:
    """Failed, or cancelled when the worker stopped for a cancel (flagged or requested).
    A job stopped early ends succeeded, as stopped: its child killed by the stop's
    SIGTERM exits non-zero, yet its points up to the stop are its result."""
    job = held_job(session, job_id, body.lease_token)
    if job.early_stopped is not None:
        reported = {"stopped_early": True, "report": body.error}
        early_stop.end_stopped(session, job, utcnow(), summary=reported)
    else:
        job.error = body.error
        cancelled = body.cancelled or job.cancel_requested
        transition(session, job, Status.cancelled if cancelled else Status.failed, utcnow())
    session.flush()
    _sweep_slot_freed(session, job)
    return job


def _sweep_slot_freed(session: Session, job: Job) -> None:
    """A sweep's job ended: settle its trial and queue the next, in this transaction.
    It waits for the sweep's lock (a claim topping up at this moment counted this job
    as running), so the slot it frees is filled now, not at some later claim."""
    if job.sweep_id is None:
        return
    sweep = search_store.locked_sweep(session, job.sweep_id)
    if sweep is not None:
        search_store.top_up(session, sweep)


def release(session: Session, job_id: int, token: str) -> Job:
    """Hand the job back to the queue (a worker shutting down), or end it if cancelled.

    A hand-back is not a failed attempt, so it gives the job one more claim.
    """
    job = held_job(session, job_id, token)
    now = utcnow()
    if job.early_stopped is not None:
        early_stop.end_stopped(session, job, now)  # stopped: nothing is left to run
    elif job.cancel_requested:
        transition(session, job, Status.cancelled, now)
    else:
        job.max_attempts += 1
        transition(session, job, Status.queued, now)
    session.flush()
    return job


def reap_lapsed_leases(session: Session, now: datetime | None = None) -> int:
    """Running jobs whose lease expired: queued again while claims remain, else failed."""
    now = now or utcnow()
    lapsed = session.scalars(
        select(Job)
        .where(Job.status == Status.running.value, Job.lease_expires_at < now)
        .order_by(Job.id)
        .with_for_update(skip_locked=True)
    ).all()
    for job in lapsed:
        job.lease_lapses += 1
        if job.early_stopped is not None:
            early_stop.end_stopped(session, job, now)  # its points up to the stop are its result
        elif job.cancel_requested:
            job.error = f"cancelled; worker {job.lease_owner} stopped heartbeating"
            transition(session, job, Status.cancelled, now)
        elif job.attempts < job.max_attempts:
            transition(session, job, Status.queued, now)
        else:
            job.error = lapse_error(job)
            transition(session, job, Status.failed, now)
    session.flush()
    return len(lapsed)


def lapse_error(job: Job) -> str:
    times = "time" if job.lease_lapses == 1 else "times"
    return (
        f"lease lapsed {job.lease_lapses} {times}; last worker {job.lease_owner} stopped "
        f"heartbeating; gave up after {job.attempts} of {job.max_attempts} attempts"
    )


def list_workers(session: Session, limit: int, offset: int) -> tuple[list[Worker], int]:
    """Most recently seen first."""
    total = session.scalar(select(func.count()).select_from(Worker))
    page = select(Worker).order_by(Worker.last_seen_at.desc(), Worker.id)
    return list(session.scalars(page.limit(limit).offset(offset))), int(total or 0)
