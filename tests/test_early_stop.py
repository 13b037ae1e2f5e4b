"""Stopping a job early (service side): POST /jobs/{id}/stop, `stop_job`, and how every
outcome a worker can report ends a stopped job: succeeded, keeping the verdict.

TestClient on SQLite and PostgreSQL (the `client` fixture runs each test on both).
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from momentum.contract import EarlyStopped
from service.models import Event, Job
from service.storage import early_stop
from service.storage.jobs import get_job
from tests.factories import log_points, points
from tests.jobs_support import API, claim, expire_lease, job, run_of, submit

TAG = "momentum.early_stopped"


def running_job(client: TestClient, steps: int = 300, logged: int = 0) -> dict[str, Any]:
    """A claimed job of `steps` steps, its run holding `logged` steps of loss."""
    created = submit(client, config={"dataset": "ravine", "model": "linear", "steps": steps})
    claimed = claim(client)
    assert claimed is not None and claimed["job"]["id"] == created["id"]
    if logged:
        log_points(client, created["run_id"], points("loss", range(logged)))
    return claimed


def beat(client: TestClient, claimed: dict[str, Any], step: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"lease_token": claimed["lease_token"]}
    if step is not None:
        body["step"] = step
    response = client.post(f"{API}/jobs/{claimed['job']['id']}/heartbeat", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def report(client: TestClient, claimed: dict[str, Any], outcome: str, **body: Any) -> Any:
    body = {"lease_token": claimed["lease_token"], **body}
    return client.post(f"{API}/jobs/{claimed['job']['id']}/{outcome}", json=body)


def stop(client: TestClient, job_id: int, body: Any = None) -> Any:
    return client.post(f"{API}/jobs/{job_id}/stop", json=body)


def test_a_stopped_job_completes_succeeded_with_its_verdict_and_progress(
    client: TestClient,
) -> None:
    claimed = running_job(client, logged=121)
    job_id = claimed["job"]["id"]
    assert claimed["check_steps"] == []  # not in an early-stopping sweep
    assert beat(client, claimed, step=121)["stop"] is False
    response = stop(client, job_id)
    assert response.status_code == 200, response.text
    verdict = {"step": 120, "rule": "manual", "reason": "stopped by hand at step 120"}
    assert response.json()["early_stopped"] == verdict
    assert response.json()["status"] == "running"  # until its worker hears of it
    run = run_of(client, job_id)
    assert run["early_stopped"] == verdict and run["tags"][TAG] == verdict["reason"]
    reply = beat(client, claimed, step=121)
    assert (reply["stop"], reply["cancel"]) == (True, False)
    log_points(client, claimed["job"]["run_id"], points("loss", range(121, 123)))
    summary = {"steps_done": 123, "stopped_early": True}
    done = report(client, claimed, "complete", summary=summary)
    assert done.status_code == 200, done.text
    ended = done.json()
    assert (ended["status"], ended["early_stopped"], ended["summary"]) == (
        "succeeded",
        verdict,
        summary,
    )
    # The steps it did, not N/N.
    assert (ended["progress_step"], ended["progress_total"]) == (123, 300)
    run = run_of(client, job_id)
    assert (run["status"], run["early_stopped"], run["last_step"]) == ("succeeded", verdict, 122)
    listed = client.get(f"{API}/runs", params={"tag": f"{TAG}:{verdict['reason']}"}).json()
    assert [item["id"] for item in listed["items"]] == [run["id"]]
    assert listed["items"][0]["early_stopped"] == verdict


def test_a_stopped_jobs_fail_is_a_success_as_stopped(client: TestClient) -> None:
    """An entry point's child killed by the stop's SIGTERM exits non-zero: not a failure."""
    claimed = running_job(client, logged=40)
    reason = "enough seen"
    stopped = stop(client, claimed["job"]["id"], {"reason": reason}).json()["early_stopped"]
    assert stopped["reason"] == "stopped by hand at step 39: enough seen"
    failed = report(client, claimed, "fail", error="killed by SIGTERM")
    assert failed.status_code == 200, failed.text
    ended = failed.json()
    assert (ended["status"], ended["error"], ended["early_stopped"]) == ("succeeded", None, stopped)
    assert ended["summary"] == {"stopped_early": True, "report": "killed by SIGTERM"}
    assert ended["progress_step"] == 40
    assert run_of(client, ended["id"])["status"] == "succeeded"


def test_a_stopped_job_released_or_lapsed_ends_succeeded_not_queued(
    client: TestClient, engine: Engine
) -> None:
    released = running_job(client, logged=5)
    stop(client, released["job"]["id"])
    ended = report(client, released, "release").json()
    assert (ended["status"], ended["progress_step"]) == ("succeeded", 5)
    lapsed = running_job(client, logged=7)
    stop(client, lapsed["job"]["id"])
    expire_lease(engine, lapsed["job"]["id"])
    assert claim(client) is None  # the claim's reaping ends it; nothing is queued again
    ended = job(client, lapsed["job"]["id"])
    assert (ended["status"], ended["progress_step"], ended["attempts"]) == ("succeeded", 7, 1)
    assert ended["early_stopped"]["step"] == 6


def test_stop_is_idempotent_and_409_for_a_job_not_running(
    client: TestClient, engine: Engine
) -> None:
    claimed = running_job(client, logged=10)
    job_id = claimed["job"]["id"]
    first = stop(client, job_id, {"reason": "first"}).json()["early_stopped"]
    log_points(client, claimed["job"]["run_id"], points("loss", range(10, 50)))
    again = stop(client, job_id, {"reason": "second"})
    assert again.status_code == 200 and again.json()["early_stopped"] == first
    with Session(engine) as session, session.begin():
        stored = get_job(session, job_id, lock=True)
        verdict = EarlyStopped(step=30, rule="asha", reason="stopped at step 30: worse")
        early_stop.stop_job(session, stored, verdict)  # a sweep's verdict comes second
    assert job(client, job_id)["early_stopped"] == first
    assert report(client, claimed, "complete").status_code == 200
    ended = stop(client, job_id)
    assert ended.status_code == 409
    assert "succeeded; only a running job can be stopped" in ended.json()["error"]["message"]
    queued = submit(client)
    refused = stop(client, queued["id"])
    assert refused.status_code == 409 and "queued" in refused.json()["error"]["message"]
    assert job(client, queued["id"])["early_stopped"] is None
    assert stop(client, 999_999).status_code == 404


def test_a_cancel_wins_only_if_it_came_first(client: TestClient) -> None:
    cancelled_first = running_job(client, logged=3)
    job_id = cancelled_first["job"]["id"]
    assert client.post(f"{API}/jobs/{job_id}/cancel").status_code == 200
    refused = stop(client, job_id)
    assert refused.status_code == 409 and "cancel pending" in refused.json()["error"]["message"]
    reply = beat(client, cancelled_first)
    assert (reply["cancel"], reply["stop"]) == (True, False)
    ended = report(client, cancelled_first, "fail", error="cancelled", cancelled=True).json()
    assert (ended["status"], ended["early_stopped"]) == ("cancelled", None)
    assert TAG not in run_of(client, job_id)["tags"]

    stopped_first = running_job(client, logged=3)
    job_id = stopped_first["job"]["id"]
    assert stop(client, job_id).status_code == 200
    late_cancel = client.post(f"{API}/jobs/{job_id}/cancel")
    assert late_cancel.status_code == 409
    assert "stopped early (stopped by hand at step 2)" in late_cancel.json()["error"]["message"]
    assert beat(client, stopped_first)["cancel"] is False
    # A worker that heard a cancel anyway (it cannot have): the job still ends as stopped.
    ended = report(client, stopped_first, "fail", error="cancelled", cancelled=True).json()
    assert (ended["status"], ended["early_stopped"]["rule"]) == ("succeeded", "manual")


def test_a_sweeps_verdict_on_a_queued_job_ends_it_at_once(
    client: TestClient, engine: Engine
) -> None:
    """A job whose lease lapsed after it reached a rung is queued again when judged."""
    claimed = running_job(client, logged=100)
    job_id = claimed["job"]["id"]
    expire_lease(engine, job_id)
    assert claim(client, worker_id="w2") is not None  # reaped, queued, claimed again
    report(client, {**claimed, "lease_token": "stale"}, "complete")  # 409: not its lease
    with Session(engine) as session, session.begin():
        stored = get_job(session, job_id, lock=True)
        stored.status = "queued"  # as the reaper leaves it
        verdict = EarlyStopped(step=99, rule="median", reason="stopped at step 99: median")
        early_stop.stop_job(session, stored, verdict)
    ended = job(client, job_id)
    assert (ended["status"], ended["progress_step"]) == ("succeeded", 100)
    assert ended["early_stopped"]["rule"] == "median"
    assert run_of(client, job_id)["tags"][TAG] == "stopped at step 99: median"


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_bad_stop_body_is_a_422_naming_the_field_and_writes_nothing(
    client: TestClient, engine: Engine
) -> None:
    claimed = running_job(client)
    job_id = claimed["job"]["id"]
    for body, loc in [({"why": "x"}, ["why"]), ({"reason": ""}, ["reason"])]:
        response = stop(client, job_id, body)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["detail"][0]["loc"] == loc
    assert job(client, job_id)["early_stopped"] is None
    with Session(engine) as session:
        assert session.scalar(select(Job.early_stopped).where(Job.id == job_id)) is None


def test_the_stop_is_announced_as_job_and_run_events(client: TestClient, engine: Engine) -> None:
    claimed = running_job(client, logged=8)
    with Session(engine) as session:
        before = int(session.scalar(select(Event.id).order_by(Event.id.desc()).limit(1)) or 0)
    stop(client, claimed["job"]["id"])
    with Session(engine) as session:
        feed = list(session.scalars(select(Event).where(Event.id > before).order_by(Event.id)))
    verdict = {"step": 7, "rule": "manual", "reason": "stopped by hand at step 7"}
    by_kind = {event.kind: event.payload for event in feed}
    assert set(by_kind) == {"job", "run"}
    assert by_kind["job"]["early_stopped"] == verdict
    assert by_kind["job"]["status"] == "running"
    assert by_kind["run"]["early_stopped"] == verdict
