"""A job's log: its worker appends the child's output, readers page through it.

POST /jobs/{id}/logs is the worker's (fenced by the lease like a heartbeat: 409 once
the lease is no longer held); GET /jobs/{id}/logs?offset=N is anyone's who may read.
What is kept and how offsets count: service/storage/job_logs.py.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from momentum.contract.job_logs import JobLogAck, JobLogAppend, JobLogPage
from momentum.contract.metrics import MAX_STEP
from service.api.jobs import JobId
from service.api.workers import FENCED
from service.auth import Scope, requires
from service.deps import SessionDep, SettingsDep, WriteSessionDep
from service.storage import job_logs

router = APIRouter(prefix="/jobs", tags=["jobs"])


@router.post(
    "/{job_id}/logs",
    response_model=JobLogAck,
    dependencies=[requires(Scope.worker)],
    responses=FENCED,
)
def append_job_log(
    job_id: JobId, body: JobLogAppend, session: WriteSessionDep, settings: SettingsDep
) -> JobLogAck:
    """Append the child's output from `offset` of this attempt's; a resend is a no-op."""
    received = job_logs.append(session, job_id, body, settings.max_job_log_bytes)
    return JobLogAck(received=received)


@router.get("/{job_id}/logs", response_model=JobLogPage, dependencies=[requires(Scope.read)])
def read_job_log(
    job_id: JobId,
    session: SessionDep,
    offset: Annotated[int, Query(ge=0, le=MAX_STEP, description="Byte offset to read from.")] = 0,
) -> JobLogPage:
    """Up to 1 MiB of the job's log from `offset`; ask again from `next_offset`."""
    return job_logs.read(session, job_id, offset)
