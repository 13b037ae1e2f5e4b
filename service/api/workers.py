"""The worker protocol: claim a job under a fenced lease, heartbeat, complete, fail, release.

Every call after the claim carries the claim's `lease_token`; a token that is no longer
the job's lease (it lapsed and the job was taken back, or the job ended) gets 409.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from momentum.contract import (
    Claim,
    ClaimResponse,
    ErrorResponse,
    JobComplete,
    JobFail,
    JobHeartbeat,
    JobHeartbeatReply,
    JobPublic,
    JobRelease,
    Page,
    WorkerPublic,
)
from service import run_tokens
from service.api.jobs import JobId, to_public
from service.auth import Scope, requires
from service.deps import PageDep, SessionDep, SettingsDep, WriteSessionDep
from service.storage import early_stop, leases

jobs_router = APIRouter(prefix="/jobs", tags=["workers"])
router = APIRouter(prefix="/workers", tags=["workers"])

WORKER = [requires(Scope.worker)]
FENCED: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorResponse, "description": "The lease is no longer held."}
}


@jobs_router.post(
    "/claim",
    response_model=ClaimResponse,
    dependencies=WORKER,
    responses={204: {"description": "Nothing this worker can run is queued."}},
)
def claim_job(
    body: Claim, session: WriteSessionDep, settings: SettingsDep
) -> ClaimResponse | Response:
    """Lease the oldest queued job this worker's device and frameworks can run.

    The answer's `run_token` may write only the job's run, while this lease lasts: for
    the job's own code, never the worker's token (service/run_tokens.py). It is handed
    out with auth off too, where it restricts nothing, like every other token."""
    claimed = leases.claim(session, body, settings.lease_seconds)
    if claimed is None:
        return Response(status_code=204)
    job, token = claimed
    assert job.lease_expires_at is not None and job.run_id is not None
    return ClaimResponse(
        job=to_public([job])[0],
        lease_token=token,
        lease_expires_at=job.lease_expires_at,
        run_token=run_tokens.mint(job.id, job.run_id, token),
        check_steps=early_stop.check_steps_for(session, job),
    )


@jobs_router.post(
    "/{job_id}/heartbeat", response_model=JobHeartbeatReply, dependencies=WORKER, responses=FENCED
)
def heartbeat_job(
    job_id: JobId, body: JobHeartbeat, session: WriteSessionDep, settings: SettingsDep
) -> JobHeartbeatReply:
    """Extend the lease and report progress; the reply says whether to cancel, or to
    stop early (`stop`: end the step, flush, complete)."""
    job = leases.heartbeat(session, job_id, body, settings.lease_seconds)
    assert job.lease_expires_at is not None
    return JobHeartbeatReply(
        cancel=job.cancel_requested,
        stop=job.early_stopped is not None,
        lease_expires_at=job.lease_expires_at,
    )


@jobs_router.post(
    "/{job_id}/complete", response_model=JobPublic, dependencies=WORKER, responses=FENCED
)
def complete_job(job_id: JobId, body: JobComplete, session: WriteSessionDep) -> JobPublic:
    """The job trained to the end, or to its early stop: succeeded (diverged or not)."""
    return to_public([leases.complete(session, job_id, body)])[0]


@jobs_router.post("/{job_id}/fail", response_model=JobPublic, dependencies=WORKER, responses=FENCED)
def fail_job(job_id: JobId, body: JobFail, session: WriteSessionDep) -> JobPublic:
    """The job failed, or stopped for a cancel (`cancelled: true`): failed or cancelled;
    a job stopped early ends succeeded (its child's exit after SIGTERM is no failure)."""
    return to_public([leases.fail(session, job_id, body)])[0]


@jobs_router.post(
    "/{job_id}/release", response_model=JobPublic, dependencies=WORKER, responses=FENCED
)
def release_job(job_id: JobId, body: JobRelease, session: WriteSessionDep) -> JobPublic:
    """Hand the job back to the queue (a worker shutting down) without using up an attempt."""
    return to_public([leases.release(session, job_id, body.lease_token)])[0]


@router.get("", response_model=Page[WorkerPublic], dependencies=[requires(Scope.read)])
def list_workers(session: SessionDep, page: PageDep) -> Page[WorkerPublic]:
    """Workers seen, most recent first, with their last contact and current job."""
    workers, total = leases.list_workers(session, page.limit, page.offset)
    items = [WorkerPublic.model_validate(worker) for worker in workers]
    return page.of(items, total)
