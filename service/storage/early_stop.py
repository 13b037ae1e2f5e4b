"""Stopping a job early, keeping its result: the verdict, where it is kept, how it ends.

`stop_job` is the one way a job is stopped, by a sweep's rule (ASHA, median) or by hand
(POST /jobs/{id}/stop). It writes the `EarlyStopped` verdict on the job and its run (the
run also gets the tag `momentum.early_stopped`, the reason); the ORM's flush hook turns
those changes into `job` and `run` events (service/events.py), so a dashboard sees the
stop live. On a running job the verdict is also the stop request: the heartbeat reply
says `stop: true`, and whatever the worker reports next (complete, fail, release, or
nothing until its lease lapses) ends the job `succeeded` with the verdict, its progress
at the step it reached (`end_stopped`).

A stop and a cancel race: whichever came first wins. A job with a cancel pending is not
stopped (`stop_job` leaves it), and a stopped job is not cancelled (jobs.request_cancel).

The hooks a sweep's early-stopping engine fills in:
- `check_steps_for(session, job)`: the claim response's `check_steps`, the steps at
  which the trainer flushes its points and heartbeats synchronously (its rungs);
- `judge_at_heartbeat(session, job)`: called in each heartbeat's transaction, with the
  job's row locked, before the reply is made: a verdict recorded here with `stop_job`
  reaches the worker in that very reply.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from momentum.contract import EarlyStopped, Status
from momentum.contract.early_stop import MAX_REASON_CHARS
from service.domain_errors import Conflict
from service.models import Job, Run, Series, utcnow
from service.storage import rungs as rung_store
from service.storage.entry_points import declared_total
from service.storage.jobs import transition

STOP_TAG = "momentum.early_stopped"


def stop_job(session: Session, job: Job, verdict: EarlyStopped) -> None:
    """Stop `job` early with `verdict`; the caller holds the job's row lock
    (`jobs.get_job(..., lock=True)`, or the heartbeat's `leases.held_job`).

    Idempotent: a job already stopped keeps its first verdict. A job that has ended, or
    has a cancel pending (the cancel came first), is left as it is. A running job is
    flagged (its worker hears `stop`); a queued one (its lease lapsed after the rung was
    reached) ends `succeeded` at once: its points so far are its result.
    """
    if job.early_stopped is not None or job.cancel_requested:
        return
    status = Status(job.status)
    if status.is_terminal:
        return
    now = utcnow()
    shown = verdict.model_copy(update={"reason": verdict.reason[:MAX_REASON_CHARS]})
    job.early_stopped = shown.model_dump(mode="json")
    job.updated_at = now
    _mark_run(session, job, shown, now)
    if status == Status.queued:
        end_stopped(session, job, now)
    session.flush()


def _mark_run(session: Session, job: Job, verdict: EarlyStopped, now: datetime) -> None:
    run = session.get(Run, job.run_id) if job.run_id is not None else None
    if run is None:
        return
    run.early_stopped = verdict.model_dump(mode="json")
    # A new dict, not an edit in place: the JSON column notices only reassignment.
    run.tags = {**run.tags, STOP_TAG: verdict.reason}
    run.updated_at = now


def stop_by_hand(session: Session, job: Job, reason: str | None) -> Job:
    """POST /jobs/{id}/stop: rule `manual`, at the step the job has reached. 409 unless
    the job is running without a cancel pending; a second stop keeps the first verdict."""
    if job.status != Status.running:
        raise Conflict(f"job {job.id} is {job.status}; only a running job can be stopped")
    if job.cancel_requested:
        raise Conflict(f"job {job.id} has a cancel pending: it ends cancelled, not stopped")
    if job.early_stopped is None:
        step = step_reached(session, job)
        text = f"stopped by hand at step {step}" + (f": {reason}" if reason else "")
        stop_job(session, job, EarlyStopped(step=step, rule="manual", reason=text))
    return job


def end_stopped(
    session: Session,
    job: Job,
    now: datetime,
    *,
    summary: dict[str, Any] | None = None,
    diverged: bool | None = None,
) -> None:
    """End a stopped job `succeeded`, whatever its worker reported: its progress shows
    the steps it did, not N/N. `summary` replaces the job's when given."""
    job.error = None
    if summary is not None:
        job.summary = summary
    if job.progress_total is None:
        job.progress_total = declared_total(session, job)
    job.progress_step = max(job.progress_step or 0, _last_logged_step(session, job) + 1)
    if job.progress_total is not None:
        job.progress_step = min(job.progress_step, job.progress_total)
    transition(session, job, Status.succeeded, now, diverged=diverged)


def step_reached(session: Session, job: Job) -> int:
    """The last step the job did: the later of its run's last logged step and its
    heartbeat's progress (steps done, so one past the last step)."""
    return max(0, _last_logged_step(session, job), (job.progress_step or 0) - 1)


def _last_logged_step(session: Session, job: Job) -> int:
    """The highest step logged under any key of the job's run; -1 if none."""
    if job.run_id is None:
        return -1
    last = session.scalar(select(func.max(Series.last_step)).where(Series.run_id == job.run_id))
    return -1 if last is None else int(last)


def check_steps_for(session: Session, job: Job) -> list[int]:
    """The steps at which the job's trainer flushes its points and heartbeats before
    going on (the claim's `check_steps`): the rungs of an early-stopping sweep.

    [] for a job outside an early-stopping sweep; else its rung steps below the job's
    total (service/storage/rungs.py).
    """
    if job.sweep_id is None:
        return []
    return rung_store.check_steps(session, job)


def judge_at_heartbeat(session: Session, job: Job) -> None:
    """Called by every heartbeat of a running job that is not stopped or cancelled, in
    its transaction with the job locked, after its progress is recorded and before the
    reply: the sweep decides the rungs the job's stored points reached (rungs.judge), and
    a stop is recorded with `stop_job`, so the reply says `stop: true`."""
    verdict = rung_store.judge(session, job)
    if verdict is not None:
        stop_job(session, job, verdict)
