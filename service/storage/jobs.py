"""Data access for jobs: submit, list, cancel, retry, and every status change.

Every change of a job's status goes through `transition`, which mirrors it onto the
job's run (running when claimed, queued when handed back, the end status at the end)
and frees the worker that held it. Functions only flush; the request commits.

On PostgreSQL a job about to change is read with `SELECT … FOR UPDATE`, so a cancel
and a claim of the same job serialize (claims skip locked rows); on SQLite the write
transaction's `BEGIN IMMEDIATE` already serializes writers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from momentum.contract import RunCreate, Status, TrainingConfig
from service.domain_errors import Conflict, NotFound
from service.models import ENTRY_POINT_FRAMEWORK, Job, Run, Worker, utcnow
from service.storage import runs as run_store

RETRYABLE = frozenset({Status.failed, Status.cancelled})


@dataclass(frozen=True)
class JobSpec:
    """What a new job needs besides its config: the naming and labels of its run."""

    name: str | None = None
    project: str = "default"
    tags: dict[str, str] = field(default_factory=dict)
    max_attempts: int = 3
    sweep_id: int | None = None


def external_id(job_id: int) -> str:
    """The run's idempotency key: a worker's SDK creating it again gets the same run."""
    return f"job-{job_id}"


@dataclass(frozen=True)
class EntryPointWork:
    """An entry-point job's work: the definition (name, digest) its params were checked
    against, and the full params, defaults filled in."""

    name: str
    digest: str
    params: dict[str, Any]


Work = TrainingConfig | EntryPointWork


def create_job(session: Session, work: Work, spec: JobSpec) -> Job:
    """A queued job and its queued run, whose params are the full config or params."""
    now = utcnow()
    job = Job(
        name=spec.name,
        status=Status.queued.value,
        attempts=0,
        max_attempts=spec.max_attempts,
        lease_lapses=0,
        cancel_requested=False,
        sweep_id=spec.sweep_id,
        created_at=now,
        updated_at=now,
        **_work_columns(work),
    )
    session.add(job)
    session.flush()
    if job.name is None:
        job.name = f"job-{job.id}"
    job.run_id = _create_run(session, job, spec.project, spec.tags).id
    session.flush()
    return job


def _work_columns(work: Work) -> dict[str, Any]:
    if isinstance(work, TrainingConfig):
        config = work.model_dump(mode="json")
        return {"config": config, "framework": work.framework, "device": work.device}
    # Any device: the worker's own code picks it. The framework no claim names.
    return {
        "config": {},
        "framework": ENTRY_POINT_FRAMEWORK,
        "device": "auto",
        "entry_point": work.name,
        "entry_point_digest": work.digest,
        "params": work.params,
    }


def run_params(job: Job) -> dict[str, Any]:
    """What the job's run holds as params: an entry point's params, or the config."""
    return dict(job.params or {}) if job.entry_point is not None else job.config


def _create_run(session: Session, job: Job, project: str, tags: dict[str, str]) -> Run:
    body = RunCreate(
        name=job.name,
        project=project,
        params=run_params(job),
        tags=tags,
        external_id=external_id(job.id),
        status=Status.queued,
    )
    run, _ = run_store.create_run(session, body)
    run.sweep_id = job.sweep_id
    return run


def ensure_run(session: Session, job: Job) -> None:
    """A job whose run was deleted gets a fresh one before it trains again."""
    if job.run_id is None or session.get(Run, job.run_id) is None:
        job.run_id = _create_run(session, job, "default", {}).id


def get_job(session: Session, job_id: int, *, lock: bool = False) -> Job:
    statement = select(Job).where(Job.id == job_id)
    if lock:
        statement = statement.with_for_update().execution_options(populate_existing=True)
    job = session.scalars(statement).one_or_none()
    if job is None:
        raise NotFound("job", job_id)
    return job


def list_jobs(
    session: Session, status: Status | None, sweep_id: int | None, limit: int, offset: int
) -> tuple[list[Job], int]:
    """Newest first."""
    conditions: list[Any] = []
    if status is not None:
        conditions.append(Job.status == status.value)
    if sweep_id is not None:
        conditions.append(Job.sweep_id == sweep_id)
    total = session.scalar(select(func.count()).select_from(Job).where(*conditions))
    page = select(Job).where(*conditions).order_by(Job.id.desc()).limit(limit).offset(offset)
    return list(session.scalars(page)), int(total or 0)


def transition(
    session: Session, job: Job, status: Status, now: datetime, diverged: bool | None = None
) -> None:
    """Set the job's status and mirror it onto its run and its worker."""
    job.status = status.value
    job.updated_at = now
    if status == Status.running:
        job.started_at, job.ended_at = now, None
    else:
        if status.is_terminal:
            job.ended_at = now
        # The lease ends with the run of work it covered; the owner stays for the record.
        job.lease_token, job.lease_expires_at = None, None
        if job.lease_owner is not None:
            session.execute(
                update(Worker)
                .where(Worker.id == job.lease_owner, Worker.current_job_id == job.id)
                .values(current_job_id=None)
            )
    _mirror_run(session, job, status, now, diverged)


def _mirror_run(
    session: Session, job: Job, status: Status, now: datetime, diverged: bool | None
) -> None:
    run = session.get(Run, job.run_id) if job.run_id is not None else None
    if run is None:
        return
    run.status = status.value
    run.updated_at = now
    if status == Status.running:
        # Each attempt restarts the run from step 0; its heartbeat is the job's.
        run.started_at, run.ended_at, run.last_heartbeat_at = now, None, now
    elif status == Status.queued:
        run.ended_at, run.last_heartbeat_at = None, None
    else:
        run.ended_at = now
    if diverged is not None:
        run.diverged = diverged


def request_cancel(session: Session, job: Job, now: datetime) -> bool:
    """Queued → cancelled at once; running → flagged for its worker. False if it had
    ended, or was stopped early (the stop came first: it ends succeeded with its result)."""
    if job.status == Status.queued:
        transition(session, job, Status.cancelled, now)
        return True
    if job.status == Status.running and job.early_stopped is None:
        job.cancel_requested = True
        job.updated_at = now
        return True
    return job.status == Status.cancelled


def cancel_job(session: Session, job: Job) -> Job:
    if not request_cancel(session, job, utcnow()):
        if job.early_stopped is not None:
            reason = job.early_stopped.get("reason")
            raise Conflict(f"job {job.id} was stopped early ({reason}); it ends succeeded")
        raise Conflict(f"job {job.id} already ended ({job.status}); there is nothing to cancel")
    session.flush()
    return job


def retry_job(session: Session, job: Job, budget: int) -> Job:
    """Failed or cancelled → queued, with a fresh budget of `budget` more claims.

    `attempts` keeps counting (it is the job's history); the run is reset to queued and
    keeps its points: the retry restarts at step 0 and, being deterministic for its
    seed, upserts the same values over them.
    """
    if Status(job.status) not in RETRYABLE:
        message = f"job {job.id} is {job.status}; only failed or cancelled jobs can be retried"
        raise Conflict(message)
    now = utcnow()
    job.max_attempts = job.attempts + budget
    job.cancel_requested = False
    job.error = None
    job.summary = None
    job.progress_step = job.progress_total = None
    job.started_at = job.ended_at = None
    ensure_run(session, job)
    transition(session, job, Status.queued, now)
    run = session.get(Run, job.run_id)
    if run is not None:
        run.started_at, run.diverged = None, False
    session.flush()
    return job
