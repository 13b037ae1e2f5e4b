"""The worker protocol: claims, fenced leases, heartbeats, outcomes, lapsed leases."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from momentum.contract import Claim
from service import Settings, create_app
from service.storage.leases import next_claimable, reap_lapsed_leases
from tests.jobs_support import (
    API,
    assert_lease_lost,
    claim,
    config,
    expire_lease,
    job,
    run_of,
    submit,
)


def test_postgres_claims_skip_rows_other_claimers_hold() -> None:
    statement = next_claimable(Claim(worker_id="w", device="cuda"))
    sql = str(statement.compile(dialect=postgresql.dialect()))
    assert sql.rstrip().endswith("FOR UPDATE SKIP LOCKED")
    assert "ORDER BY jobs.id" in sql and "LIMIT" in sql


def _at(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _workers(client: TestClient) -> dict[str, dict]:  # type: ignore[type-arg]
    return {w["id"]: w for w in client.get(f"{API}/workers").json()["items"]}


def test_claim_leases_the_oldest_job_to_the_worker(client: TestClient) -> None:
    first, second = submit(client), submit(client)
    lease = claim(client, "w1")
    assert lease is not None
    claimed = lease["job"]
    assert claimed["id"] == first["id"]
    assert (claimed["status"], claimed["attempts"], claimed["lease_owner"]) == ("running", 1, "w1")
    assert len(lease["lease_token"]) >= 32
    assert lease["lease_expires_at"] == claimed["lease_expires_at"]
    seconds = (_at(lease["lease_expires_at"]) - _at(claimed["started_at"])).total_seconds()
    assert 29 < seconds <= 30
    run = run_of(client, first["id"])
    assert run["status"] == "running" and run["started_at"] is not None
    other = claim(client, "w2")
    assert other is not None and other["job"]["id"] == second["id"]
    assert other["lease_token"] != lease["lease_token"]
    assert claim(client, "w3") is None
    workers = _workers(client)
    assert {k: w["current_job_id"] for k, w in workers.items()} == {
        "w1": first["id"],
        "w2": second["id"],
        "w3": None,
    }
    assert workers["w1"]["frameworks"] == ["torch"] and workers["w1"]["device"] == "cpu"
    bad = client.post(f"{API}/jobs/claim", json={"worker_id": "w", "device": "tpu"})
    assert bad.status_code == 422 and bad.json()["error"]["detail"][0]["loc"] == ["device"]


def test_claims_respect_device_and_frameworks(client: TestClient) -> None:
    on_cuda = submit(client, config=config(device="cuda"))
    on_numpy = submit(client, config=config(framework="numpy", device="cpu"))
    anywhere = submit(client, config=config(device="auto"))
    cpu_torch = claim(client, "cpu-torch", "cpu", ["torch"])
    assert cpu_torch is not None and cpu_torch["job"]["id"] == anywhere["id"]
    assert claim(client, "cpu-torch", "cpu", ["torch"]) is None
    assert claim(client, "auto-torch", "auto", ["torch"]) is None
    numpy = claim(client, "cpu-numpy", "cpu", ["numpy", "keras"])
    assert numpy is not None and numpy["job"]["id"] == on_numpy["id"]
    cuda = claim(client, "gpu", "cuda", ["torch"])
    assert cuda is not None and cuda["job"]["id"] == on_cuda["id"]


def test_a_job_completed_before_any_heartbeat_shows_all_its_steps_done(
    client: TestClient,
) -> None:
    # A job quicker than the heartbeat interval: the dashboard showed it 0/N.
    created = submit(client, config=config(steps=7))
    lease = claim(client)
    assert lease is not None and lease["job"]["progress_step"] is None
    url = f"{API}/jobs/{created['id']}/complete"
    completed = client.post(url, json={"lease_token": lease["lease_token"]})
    assert completed.status_code == 200, completed.text
    assert (completed.json()["progress_step"], completed.json()["progress_total"]) == (7, 7)
    now = job(client, created["id"])
    assert (now["progress_step"], now["progress_total"]) == (7, 7)


def test_heartbeat_extends_the_lease_and_other_tokens_are_refused(client: TestClient) -> None:
    created = submit(client)
    lease = claim(client)
    assert lease is not None
    time.sleep(0.05)
    beat = client.post(
        f"{API}/jobs/{created['id']}/heartbeat",
        json={"lease_token": lease["lease_token"], "step": 3, "total": 5},
    )
    assert beat.status_code == 200, beat.text
    assert beat.json()["cancel"] is False
    assert _at(beat.json()["lease_expires_at"]) > _at(lease["lease_expires_at"])
    now = job(client, created["id"])
    assert (now["progress_step"], now["progress_total"]) == (3, 5)
    assert now["lease_expires_at"] == beat.json()["lease_expires_at"]
    assert run_of(client, created["id"])["last_heartbeat_at"] is not None
    assert _workers(client)["w1"]["last_seen_at"] > lease["job"]["started_at"]

    # Fencing: a token that is not the job's current lease is refused.
    url = f"{API}/jobs/{created['id']}"
    wrong = {"lease_token": "not-the-token"}
    assert_lease_lost(client.post(f"{url}/heartbeat", json=wrong))
    assert_lease_lost(client.post(f"{url}/complete", json=wrong))
    assert_lease_lost(client.post(f"{url}/fail", json={**wrong, "error": "x"}))
    assert_lease_lost(client.post(f"{url}/release", json=wrong))
    assert job(client, created["id"])["status"] == "running"
    right = {"lease_token": lease["lease_token"]}
    completed = client.post(f"{url}/complete", json=right)
    assert completed.status_code == 200
    # The last heartbeat said 3 of 5; a completed job has done them all.
    assert (completed.json()["progress_step"], completed.json()["progress_total"]) == (5, 5)
    assert_lease_lost(client.post(f"{url}/heartbeat", json=right))  # the job has ended
    assert client.post(f"{API}/jobs/999/heartbeat", json=right).status_code == 404


def test_complete_and_fail_end_the_job_and_mirror_onto_its_run(client: TestClient) -> None:
    good, bad = submit(client), submit(client)
    first, second = claim(client, "w1"), claim(client, "w2")
    assert first is not None and second is not None
    done = client.post(
        f"{API}/jobs/{good['id']}/complete",
        json={"lease_token": first["lease_token"], "diverged": True, "summary": {"loss": 0.1}},
    ).json()
    assert (done["status"], done["summary"], done["lease_expires_at"]) == (
        "succeeded",
        {"loss": 0.1},
        None,
    )
    run = run_of(client, good["id"])
    assert (run["status"], run["diverged"]) == ("succeeded", True)
    assert run["ended_at"] is not None
    failed = client.post(
        f"{API}/jobs/{bad['id']}/fail",
        json={"lease_token": second["lease_token"], "error": "loss exploded"},
    ).json()
    assert (failed["status"], failed["error"]) == ("failed", "loss exploded")
    assert run_of(client, bad["id"])["status"] == "failed"
    assert {w["current_job_id"] for w in _workers(client).values()} == {None}


def test_a_cancelled_running_job_ends_cancelled_whatever_the_worker_reports(
    client: TestClient, engine: Engine
) -> None:
    created = submit(client)
    lease = claim(client)
    assert lease is not None
    client.post(f"{API}/jobs/{created['id']}/cancel")
    token = {"lease_token": lease["lease_token"]}
    beat = client.post(f"{API}/jobs/{created['id']}/heartbeat", json=token)
    assert beat.json()["cancel"] is True
    ended = client.post(f"{API}/jobs/{created['id']}/fail", json={**token, "error": "stopped"})
    assert ended.json()["status"] == "cancelled"
    assert run_of(client, created["id"])["status"] == "cancelled"
    # A cancelled job whose worker went silent ends cancelled, not queued again.
    silent = submit(client)
    assert claim(client) is not None
    client.post(f"{API}/jobs/{silent['id']}/cancel")
    expire_lease(engine, silent["id"])
    assert claim(client) is None
    assert job(client, silent["id"])["status"] == "cancelled"


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_release_hands_the_job_back_without_using_an_attempt(client: TestClient) -> None:
    created = submit(client)
    lease = claim(client, "leaving")
    assert lease is not None
    token = {"lease_token": lease["lease_token"]}
    released = client.post(f"{API}/jobs/{created['id']}/release", json=token).json()
    assert (released["status"], released["attempts"], released["max_attempts"]) == (
        "queued",
        1,
        4,
    )
    assert run_of(client, created["id"])["status"] == "queued"
    assert_lease_lost(client.post(f"{API}/jobs/{created['id']}/heartbeat", json=token))
    again = claim(client, "staying")
    assert again is not None and again["job"]["attempts"] == 2


def test_a_lapsed_lease_is_taken_back_then_fails_after_max_attempts(
    client: TestClient, engine: Engine
) -> None:
    created = submit(client, max_attempts=2)
    first = claim(client, "w1")
    assert first is not None
    expire_lease(engine, created["id"])
    # A claim takes a lapsed job back itself, without waiting for the reaper.
    second = claim(client, "w2")
    assert second is not None and second["job"]["id"] == created["id"]
    assert (second["job"]["attempts"], second["job"]["lease_lapses"]) == (2, 1)
    url = f"{API}/jobs/{created['id']}"
    assert_lease_lost(client.post(f"{url}/complete", json={"lease_token": first["lease_token"]}))
    assert _workers(client)["w1"]["current_job_id"] is None

    expire_lease(engine, created["id"])
    with Session(engine) as session, session.begin():
        assert reap_lapsed_leases(session) == 1
    failed = job(client, created["id"])
    assert (failed["status"], failed["lease_lapses"]) == ("failed", 2)
    assert failed["error"].startswith("lease lapsed 2 times; last worker w2")
    assert run_of(client, created["id"])["status"] == "failed"
    assert_lease_lost(client.post(f"{url}/heartbeat", json={"lease_token": second["lease_token"]}))
    assert claim(client, "w3") is None


@pytest.fixture
def short_lease(settings: Settings) -> Iterator[TestClient]:
    fast = settings.model_copy(update={"lease_seconds": 1.0, "reaper_interval_s": 0.2})
    with TestClient(create_app(fast)) as client:
        yield client


# The storage function is tested on both backends above; this checks the app runs it.
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_reaper_requeues_a_silent_workers_job(short_lease: TestClient) -> None:
    created = submit(short_lease)
    assert claim(short_lease) is not None
    deadline = time.monotonic() + 5
    while job(short_lease, created["id"])["status"] == "running":
        assert time.monotonic() < deadline, "the lapsed lease was not taken back"
        time.sleep(0.1)
    requeued = job(short_lease, created["id"])
    assert (requeued["status"], requeued["lease_lapses"]) == ("queued", 1)
    assert run_of(short_lease, created["id"])["status"] == "queued"


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_worker_token_claims_but_cannot_submit(settings: Settings) -> None:
    secrets = {"token": SecretStr("full"), "worker_token": SecretStr("worker")}
    with TestClient(create_app(settings.model_copy(update=secrets))) as client:
        full, worker = {"Authorization": "Bearer full"}, {"Authorization": "Bearer worker"}
        body = {"config": config()}
        assert client.post(f"{API}/jobs", json=body, headers=worker).status_code == 403
        assert client.post(f"{API}/jobs", json=body, headers=full).status_code == 201
        claimed = client.post(f"{API}/jobs/claim", json={"worker_id": "w"}, headers=worker)
        assert claimed.status_code == 200
        assert client.post(f"{API}/jobs/1/cancel", headers=worker).status_code == 403
        assert client.get(f"{API}/workers", headers=worker).status_code == 200
