"""An in-memory stand-in for the job-queue routes a worker uses, through httpx.MockTransport:
entry-point registration, claim, heartbeat, complete/fail/release, and GET /runs/{id} for
progress. Bodies are checked with the contract's models, as the service checks them.

It hands out the jobs queued in it, one per claim, each with a lease and a run token.
`heartbeat_reply` decides each heartbeat's answer (cancel, or 409 for a lost lease).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson

from momentum.contract import (
    Claim,
    EntryPointRegistration,
    JobComplete,
    JobFail,
    JobHeartbeat,
    JobPublic,
    JobRelease,
    RunPublic,
)

LEASE = timedelta(seconds=0.3)  # heartbeats every 0.1 s (MIN_HEARTBEAT_S)
NOW = "2026-01-01T00:00:00Z"


def job_public(**fields: Any) -> JobPublic:
    """An entry-point job as the service shows it (fields override)."""
    base: dict[str, Any] = {name: None for name in JobPublic.model_fields}
    base.update(
        id=7,
        name="job-7",
        status="running",
        entry_point="train",
        params={"momentum": 0.9, "steps": 40},
        framework="torch",
        device="cpu",
        attempts=1,
        max_attempts=3,
        run_id=12,
        cancel_requested=False,
        lease_lapses=0,
        created_at=NOW,
        updated_at=NOW,
    )
    return JobPublic.model_validate({**base, **fields})


@dataclass
class FakeQueue:
    queued: list[JobPublic] = field(default_factory=list)
    run_token: str | None = "run-token-7"
    last_step: int | None = None
    registered: dict[str, EntryPointRegistration] = field(default_factory=dict)
    claims: list[Claim] = field(default_factory=list)
    heartbeats: list[JobHeartbeat] = field(default_factory=list)
    outcomes: list[tuple[str, JobComplete | JobFail | JobRelease]] = field(default_factory=list)
    heartbeat_reply: Callable[[], int | bool] = lambda: False  # True: cancel; an int: status
    lock: threading.Lock = field(default_factory=threading.Lock)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            parts = request.url.path.removeprefix("/api/v1/").split("/")
            return self._route(request, parts)

    def _route(self, request: httpx.Request, parts: list[str]) -> httpx.Response:
        body = request.content
        if parts[0] == "entry-points" and request.method == "PUT":
            registration = EntryPointRegistration.model_validate_json(body)
            self.registered[parts[1]] = registration
            return _json(200, self._entry_point(parts[1], registration))
        if parts == ["jobs", "claim"]:
            return self._claim(Claim.model_validate_json(body))
        if parts[0] == "jobs" and parts[2] == "heartbeat":
            return self._heartbeat(JobHeartbeat.model_validate_json(body))
        if parts[0] == "jobs" and parts[2] in OUTCOMES:
            self.outcomes.append((parts[2], OUTCOMES[parts[2]].model_validate_json(body)))
            return _json(200, job_public().model_dump(mode="json"))
        if parts[0] == "runs" and request.method == "GET":
            return _json(200, self._run(int(parts[1])))
        return _json(404, {"error": {"code": "not_found", "message": "no route", "detail": []}})

    def _claim(self, claim: Claim) -> httpx.Response:
        self.claims.append(claim)
        if not self.queued:
            return httpx.Response(204)
        job = self.queued.pop(0)
        answer = {
            "job": job.model_dump(mode="json"),
            "lease_token": "lease-1",
            "lease_expires_at": (datetime.now(UTC) + LEASE).isoformat(),
            "run_token": self.run_token,
        }
        return _json(200, answer)

    def _heartbeat(self, beat: JobHeartbeat) -> httpx.Response:
        self.heartbeats.append(beat)
        reply = self.heartbeat_reply()
        if reply is not True and reply is not False:
            return _json(reply, {"error": {"code": "lease_lost", "message": "lost", "detail": []}})
        expires = (datetime.now(UTC) + LEASE).isoformat()
        return _json(200, {"cancel": reply, "lease_expires_at": expires})

    def _entry_point(self, name: str, registration: EntryPointRegistration) -> dict[str, Any]:
        return {
            **registration.model_dump(mode="json", exclude={"worker_id"}),
            "name": name,
            "workers": [registration.worker_id],
            "registered_at": NOW,
            "updated_at": NOW,
        }

    def _run(self, run_id: int) -> dict[str, Any]:
        # Every field at its default (None where it has none), so fields added to the
        # contract later keep this fake a valid RunPublic.
        fields = RunPublic.model_fields.items()
        run: dict[str, Any] = {
            name: None if field.is_required() else field.get_default(call_default_factory=True)
            for name, field in fields
        }
        run.update(id=run_id, name=f"run-{run_id}", project="default", status="running")
        run.update(diverged=False, params={}, tags={}, latest={}, best={}, last_step=self.last_step)
        return run | {"created_at": NOW, "updated_at": NOW}

    def reported(self) -> list[str]:
        return [kind for kind, _ in self.outcomes]


OUTCOMES: dict[str, type[JobComplete] | type[JobFail] | type[JobRelease]] = {
    "complete": JobComplete,
    "fail": JobFail,
    "release": JobRelease,
}


def _json(status: int, body: dict[str, Any]) -> httpx.Response:
    return httpx.Response(
        status, content=orjson.dumps(body), headers={"Content-Type": "application/json"}
    )
