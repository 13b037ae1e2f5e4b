"""The job, sweep and worker routes of `MomentumClient`: the worker protocol and the
queue commands (`momentum submit`, `sweep`, `jobs`, `workers`).

Bodies and answers are the contract's models, so a change to the contract shows up as
a type error in the worker and the CLI rather than a `KeyError` in a running worker.
"""

from __future__ import annotations

from urllib.parse import quote

import httpx
import orjson
from pydantic import TypeAdapter

from momentum.client.encoding import encode_body, query_params
from momentum.client.methods import RequestMethods
from momentum.contract.common import Page
from momentum.contract.entry_points import EntryPointPublic, EntryPointRegistration
from momentum.contract.job_logs import JobLogAck, JobLogAppend, JobLogPage
from momentum.contract.jobs import (
    Claim,
    ClaimResponse,
    JobComplete,
    JobCreate,
    JobFail,
    JobHeartbeat,
    JobHeartbeatReply,
    JobPublic,
    JobRelease,
    WorkerPublic,
)
from momentum.contract.sweeps import SweepCreate, SweepPublic

NO_JOB = 204
_ENTRY_POINTS = TypeAdapter(list[EntryPointPublic])


class JobMethods(RequestMethods):
    """Mixed into `MomentumClient`, whose `request` sends the calls."""

    def submit_job(self, body: JobCreate) -> JobPublic:
        """Queue one training job (and create its run)."""
        return self._job("/jobs", body)

    def create_sweep(self, body: SweepCreate) -> SweepPublic:
        """Queue one job per combination of the grid."""
        response = self.request("POST", "/sweeps", content=encode_body(body))
        return SweepPublic.model_validate_json(response.content)

    def list_jobs(
        self, *, status: str | None = None, sweep_id: int | None = None, limit: int = 50
    ) -> Page[JobPublic]:
        """Jobs, newest first."""
        params = query_params({"status": status, "sweep_id": sweep_id, "limit": limit})
        response = self.request("GET", "/jobs", params=params)
        return Page[JobPublic].model_validate_json(response.content)

    def get_job(self, job_id: int) -> JobPublic:
        """One job: status, attempts, progress, error, run."""
        return JobPublic.model_validate_json(self.request("GET", f"/jobs/{job_id}").content)

    def cancel_job(self, job_id: int) -> JobPublic:
        """Cancel a queued job at once; a running one once its worker hears of it."""
        return self._job(f"/jobs/{job_id}/cancel")

    def retry_job(self, job_id: int) -> JobPublic:
        """Queue an ended job again."""
        return self._job(f"/jobs/{job_id}/retry")

    def list_workers(self, *, limit: int = 50) -> Page[WorkerPublic]:
        """The workers the service has seen, most recent first."""
        response = self.request("GET", "/workers", params={"limit": limit})
        return Page[WorkerPublic].model_validate_json(response.content)

    def register_entry_point(self, name: str, body: EntryPointRegistration) -> EntryPointPublic:
        """Announce an entry point this worker runs (idempotent: a PUT by name)."""
        path = f"/entry-points/{quote(name, safe='')}"
        response = self.request("PUT", path, content=encode_body(body))
        return EntryPointPublic.model_validate_json(response.content)

    def list_entry_points(self) -> list[EntryPointPublic]:
        """The registered entry points, each with its params, digest and workers."""
        response = self.request("GET", "/entry-points")
        listed = orjson.loads(response.content)
        # A bare list, or a page of them ({"items": [...], ...}) like the other listings.
        items = listed["items"] if isinstance(listed, dict) else listed
        return _ENTRY_POINTS.validate_python(items)

    def claim(self, body: Claim) -> ClaimResponse | None:
        """A lease on the next job this worker can run, or None when none is queued."""
        response = self.request("POST", "/jobs/claim", content=encode_body(body))
        if response.status_code == NO_JOB:
            return None
        return ClaimResponse.model_validate_json(response.content)

    def heartbeat_job(
        self, job_id: int, body: JobHeartbeat, timeout: httpx.Timeout | float | None = None
    ) -> JobHeartbeatReply:
        """Keep the lease and report progress; the reply says whether to cancel."""
        path = f"/jobs/{job_id}/heartbeat"
        response = self.request("POST", path, content=encode_body(body), timeout=timeout)
        return JobHeartbeatReply.model_validate_json(response.content)

    def complete_job(self, job_id: int, body: JobComplete) -> JobPublic:
        return self._job(f"/jobs/{job_id}/complete", body)

    def fail_job(self, job_id: int, body: JobFail) -> JobPublic:
        return self._job(f"/jobs/{job_id}/fail", body)

    def release_job(self, job_id: int, body: JobRelease) -> JobPublic:
        """Hand the job back to the queue (this worker is stopping)."""
        return self._job(f"/jobs/{job_id}/release", body)

    def append_job_log(
        self,
        job_id: int,
        lease_token: str,
        offset: int,
        text: str,
        timeout: httpx.Timeout | float | None = None,
    ) -> JobLogAck:
        """Store the child's output from byte `offset` of this attempt's; a resend is a no-op."""
        body = JobLogAppend(lease_token=lease_token, offset=offset, text=text)
        path = f"/jobs/{job_id}/logs"
        response = self.request("POST", path, content=encode_body(body), timeout=timeout)
        return JobLogAck.model_validate_json(response.content)

    def job_logs(self, job_id: int, offset: int = 0) -> JobLogPage:
        """Up to 1 MiB of the job's log from `offset`; ask again from `next_offset`."""
        response = self.request("GET", f"/jobs/{job_id}/logs", params={"offset": offset})
        return JobLogPage.model_validate_json(response.content)

    def _job(
        self, path: str, body: JobCreate | JobComplete | JobFail | JobRelease | None = None
    ) -> JobPublic:
        content = encode_body(body) if body is not None else None
        return JobPublic.model_validate_json(self.request("POST", path, content=content).content)
