"""Small factories for job, sweep and worker-protocol tests, through the public API."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from service.models import Job, utcnow

API = "/api/v1"
# Tiny and valid: a few steps of a linear model on the ravine.
TINY = {"dataset": "ravine", "model": "linear", "steps": 5, "eval_every": 5}


def config(**overrides: Any) -> dict[str, Any]:
    return {**TINY, **overrides}


def submit(client: TestClient, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"config": config()}
    body.update(overrides)
    response = client.post(f"{API}/jobs", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def claim(
    client: TestClient,
    worker_id: str = "w1",
    device: str = "cpu",
    frameworks: list[str] | None = None,
) -> dict[str, Any] | None:
    """The claim's body, or None when the server answered 204."""
    body = {"worker_id": worker_id, "device": device, "frameworks": frameworks or ["torch"]}
    response = client.post(f"{API}/jobs/claim", json=body)
    if response.status_code == 204:
        assert response.content == b""
        return None
    assert response.status_code == 200, response.text
    return response.json()


def job(client: TestClient, job_id: int) -> dict[str, Any]:
    response = client.get(f"{API}/jobs/{job_id}")
    assert response.status_code == 200, response.text
    return response.json()


def run_of(client: TestClient, job_id: int) -> dict[str, Any]:
    response = client.get(f"{API}/runs/{job(client, job_id)['run_id']}")
    assert response.status_code == 200, response.text
    return response.json()


def expire_lease(engine: Engine, job_id: int) -> None:
    """Move a lease into the past, as if its worker had gone silent."""
    with Session(engine) as session, session.begin():
        session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )


def assert_lease_lost(response: Any) -> None:
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert error["code"] == "lease_not_held"
    assert "no longer held" in error["message"]
