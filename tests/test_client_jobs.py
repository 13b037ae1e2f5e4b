"""MomentumClient's job, sweep and worker methods against a mock transport: the bodies
they send are the contract's models, the answers come back as its models."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from momentum.client import MomentumAPIError, MomentumClient
from momentum.contract import (
    Claim,
    JobComplete,
    JobCreate,
    JobFail,
    JobHeartbeat,
    JobRelease,
    SweepCreate,
    TrainingConfig,
)

STAMP = "2024-01-01T00:00:00Z"
CONFIG = TrainingConfig(dataset="ravine", model="linear", steps=50).model_dump(mode="json")
JOB = {
    "id": 3, "name": "job-3", "status": "running", "config": CONFIG, "framework": "torch",
    "device": "cpu", "attempts": 1, "max_attempts": 3, "lease_lapses": 0,
    "lease_owner": "w1", "lease_expires_at": STAMP, "cancel_requested": False,
    "error": None, "progress_step": 10, "progress_total": 50, "run_id": 9, "sweep_id": None,
    "summary": None, "created_at": STAMP, "updated_at": STAMP, "started_at": STAMP,
    "ended_at": None,
}  # fmt: skip
WORKER = {
    "id": "w1", "device": "cpu", "frameworks": ["torch"], "current_job_id": 3,
    "first_seen_at": STAMP, "last_seen_at": STAMP,
}  # fmt: skip
SWEEP = {
    "id": 2, "name": "mu", "base": {}, "grid": {"momentum": [0.0, 0.9]}, "status": "queued",
    "job_ids": [4, 5], "counts": {"queued": 2}, "created_at": STAMP, "updated_at": STAMP,
}  # fmt: skip


def page(*items: Any) -> dict[str, Any]:
    return {"items": list(items), "total": len(items), "limit": 50, "offset": 0}


def serving(
    answer: Callable[[httpx.Request], httpx.Response],
) -> tuple[MomentumClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer(request)

    client = MomentumClient("http://svc", "t", transport=httpx.MockTransport(handler))
    return client, seen


def answering(status: int, body: Any = None) -> Callable[[httpx.Request], httpx.Response]:
    return lambda _request: httpx.Response(status, json=body)


def sent(request: httpx.Request) -> Any:
    return orjson.loads(request.content)


def test_claim_sends_the_claim_and_returns_a_typed_lease() -> None:
    lease = {"job": JOB, "lease_token": "tok", "lease_expires_at": STAMP}
    client, seen = serving(answering(200, lease))
    claimed = client.claim(Claim(worker_id="w1", device="cpu", frameworks=["torch", "numpy"]))
    assert claimed is not None and claimed.lease_token == "tok"
    assert claimed.job.config.steps == 50 and claimed.job.run_id == 9
    assert (seen[0].method, seen[0].url.path) == ("POST", "/api/v1/jobs/claim")
    assert sent(seen[0]) == {"worker_id": "w1", "device": "cpu", "frameworks": ["torch", "numpy"]}


def test_claim_returns_none_when_nothing_is_queued() -> None:
    client, _ = serving(lambda _request: httpx.Response(204))
    assert client.claim(Claim(worker_id="w1")) is None


def test_heartbeat_job_reports_progress_and_reads_the_cancel_flag() -> None:
    client, seen = serving(answering(200, {"cancel": True, "lease_expires_at": STAMP}))
    reply = client.heartbeat_job(3, JobHeartbeat(lease_token="tok", step=10, total=50), 5.0)
    assert reply.cancel is True and reply.lease_expires_at.year == 2024
    assert seen[0].url.path == "/api/v1/jobs/3/heartbeat"
    assert sent(seen[0]) == {"lease_token": "tok", "step": 10, "total": 50}
    assert seen[0].extensions["timeout"]["read"] == 5.0


@pytest.mark.parametrize(
    ("report", "path", "body"),
    [
        ("complete_job", "complete", JobComplete(lease_token="t", diverged=False, summary={})),
        ("fail_job", "fail", JobFail(lease_token="t", error="cancelled", cancelled=True)),
        ("release_job", "release", JobRelease(lease_token="t")),
    ],
)
def test_outcomes_post_their_model_and_return_the_job(report: str, path: str, body: Any) -> None:
    client, seen = serving(answering(200, JOB))
    job = getattr(client, report)(3, body)
    assert job.id == 3 and job.config.dataset == "ravine"
    assert seen[0].url.path == f"/api/v1/jobs/3/{path}"
    assert sent(seen[0]) == body.model_dump(mode="json", exclude_unset=True)


def test_a_lost_lease_raises_the_409() -> None:
    error = {"error": {"code": "lease_lost", "message": "not yours", "detail": []}}
    client, _ = serving(answering(409, error))
    with pytest.raises(MomentumAPIError) as raised:
        client.complete_job(3, JobComplete(lease_token="old"))
    assert (raised.value.status_code, raised.value.retryable) == (409, False)


def test_submit_and_sweep_send_only_the_fields_given() -> None:
    client, seen = serving(answering(201, JOB))
    job = client.submit_job(JobCreate.model_validate({"config": {"steps": 50}, "tags": {}}))
    body = sent(seen[0])
    assert job.status == "running" and set(body) == {"config", "tags"}
    # Defaults stay the service's to fill in (a model the config derives is sent, as set).
    assert body["config"]["steps"] == 50 and "lr" not in body["config"]
    client, seen = serving(answering(201, SWEEP))
    sweep = client.create_sweep(SweepCreate(name="mu", grid={"momentum": [0.0, 0.9]}))
    assert sweep.job_ids == [4, 5] and seen[0].url.path == "/api/v1/sweeps"
    assert sent(seen[0]) == {"name": "mu", "grid": {"momentum": [0.0, 0.9]}}


def test_cancel_and_retry_post_to_the_job() -> None:
    client, seen = serving(answering(200, JOB))
    assert client.cancel_job(3).id == 3 and client.retry_job(3).id == 3
    assert [request.url.path for request in seen] == [
        "/api/v1/jobs/3/cancel",
        "/api/v1/jobs/3/retry",
    ]
    assert all(request.content == b"" for request in seen)


def test_lists_send_only_the_filters_given_and_return_pages() -> None:
    client, seen = serving(lambda request: httpx.Response(200, json=page(
        WORKER if request.url.path.endswith("/workers") else JOB
    )))  # fmt: skip
    jobs = client.list_jobs(status="running", limit=10)
    assert jobs.total == 1 and jobs.items[0].lease_owner == "w1"
    assert dict(seen[0].url.params) == {"status": "running", "limit": "10"}
    workers = client.list_workers(limit=5)
    assert workers.items[0].frameworks == ["torch"] and dict(seen[1].url.params) == {"limit": "5"}
