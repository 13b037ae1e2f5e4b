"""Jobs API: submit (validated), list, get, cancel, retry, and the job's run."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from service.models import Job, Run
from tests.factories import log_points, points
from tests.jobs_support import API, claim, config, job, run_of, submit


def test_submit_queues_the_job_and_its_run(client: TestClient) -> None:
    response = client.post(
        f"{API}/jobs",
        json={"config": config(momentum=0.5, lr=0.01), "project": "p", "tags": {"who": "me"}},
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["status"] == "queued"
    assert created["name"] == f"job-{created['id']}"
    assert (created["attempts"], created["max_attempts"]) == (0, 3)
    assert created["config"]["momentum"] == 0.5
    assert created["config"]["optimizer"] == "momentum"  # defaults are filled in
    assert "lease_token" not in created
    run = run_of(client, created["id"])
    assert run["id"] == created["run_id"]
    assert (run["status"], run["project"], run["tags"]) == ("queued", "p", {"who": "me"})
    assert run["external_id"] == f"job-{created['id']}"
    assert (run["optimizer"], run["momentum"], run["lr"]) == ("momentum", 0.5, 0.01)
    assert run["params"]["dataset"] == "ravine"
    # A worker's SDK creating the run by its external id resumes it.
    again = client.post(f"{API}/runs", json={"external_id": f"job-{created['id']}"})
    assert again.status_code == 200
    assert again.json()["id"] == created["run_id"]


def _rejected(client: TestClient, engine: Engine, body: object) -> dict:  # type: ignore[type-arg]
    response = client.post(f"{API}/jobs", json=body)
    assert response.status_code == 422, response.text
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 0
        assert session.scalar(select(func.count()).select_from(Run)) == 0
    return response.json()["error"]


# Validation happens before any database work: one backend is enough.
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_submit_names_the_bad_field_or_combination(client: TestClient, engine: Engine) -> None:
    error = _rejected(client, engine, {"config": config(momentum=1.5)})
    assert error["detail"][0]["loc"] == ["config", "momentum"]
    assert "config.momentum" in error["message"]
    error = _rejected(client, engine, {"config": config(momentun=0.9)})
    assert error["detail"][0]["loc"] == ["config", "momentun"]
    error = _rejected(client, engine, {"config": config(), "priority": 1})
    assert error["detail"][0]["loc"] == ["priority"]
    # Neither config nor entry_point: the request as a whole names both.
    error = _rejected(client, engine, {})
    assert error["detail"][0]["loc"] == [] and "config" in error["message"]
    assert "entry_point" in error["message"]
    error = _rejected(client, engine, {"config": config(model="cnn")})
    assert error["detail"][0]["loc"] == ["config"]
    assert "cnn" in error["message"] and "ravine" in error["message"]
    error = _rejected(client, engine, {"config": config(model="mlp")})  # named, impossible
    assert "dataset 'ravine' (regression) needs model 'linear'" in error["message"]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_model_defaults_to_the_one_the_dataset_needs(client: TestClient) -> None:
    for dataset, model in [("ravine", "linear"), ("spirals", "mlp"), ("digits", "mlp")]:
        response = client.post(f"{API}/jobs", json={"config": {"dataset": dataset}})
        assert response.status_code == 201, response.text
        assert response.json()["config"]["model"] == model


def test_list_filters_paginates_and_unknown_ids_are_404(client: TestClient) -> None:
    first, second, third = (submit(client) for _ in range(3))
    assert claim(client) is not None  # the oldest, `first`, is now running
    listed = client.get(f"{API}/jobs").json()
    assert listed["total"] == 3 and (listed["limit"], listed["offset"]) == (50, 0)
    assert [item["id"] for item in listed["items"]] == [third["id"], second["id"], first["id"]]
    running = client.get(f"{API}/jobs", params={"status": "running"}).json()
    assert [item["id"] for item in running["items"]] == [first["id"]]
    page = client.get(f"{API}/jobs", params={"status": "queued", "limit": 1, "offset": 1}).json()
    assert page["total"] == 2 and [item["id"] for item in page["items"]] == [second["id"]]
    assert client.get(f"{API}/jobs", params={"sweep_id": 1}).json()["total"] == 0
    assert client.get(f"{API}/jobs", params={"state": "queued"}).status_code == 422
    assert client.get(f"{API}/jobs", params={"status": "done"}).status_code == 422
    response = client.get(f"{API}/jobs/999")
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "job 999 does not exist"
    assert client.post(f"{API}/jobs/999/cancel").status_code == 404


def test_cancel_a_queued_job_ends_it_and_its_run_at_once(client: TestClient) -> None:
    created = submit(client)
    response = client.post(f"{API}/jobs/{created['id']}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.json()["ended_at"] is not None
    assert run_of(client, created["id"])["status"] == "cancelled"
    assert claim(client) is None  # nothing left to claim
    again = client.post(f"{API}/jobs/{created['id']}/cancel")
    assert again.status_code == 200 and again.json()["status"] == "cancelled"


def test_cancel_a_running_job_flags_it_and_an_ended_one_is_refused(client: TestClient) -> None:
    running, ended = submit(client), submit(client)
    claim(client)
    lease = claim(client)
    assert lease is not None
    response = client.post(f"{API}/jobs/{running['id']}/cancel")
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["cancel_requested"]) == ("running", True)
    assert run_of(client, running["id"])["status"] == "running"
    token = lease["lease_token"]
    client.post(f"{API}/jobs/{ended['id']}/complete", json={"lease_token": token})
    response = client.post(f"{API}/jobs/{ended['id']}/cancel")
    assert response.status_code == 409
    assert "succeeded" in response.json()["error"]["message"]
    assert job(client, ended["id"])["status"] == "succeeded"


def test_retry_requeues_a_failed_job_keeping_attempts_and_points(client: TestClient) -> None:
    created = submit(client)
    refused = client.post(f"{API}/jobs/{created['id']}/retry")
    assert refused.status_code == 409
    assert "only failed or cancelled" in refused.json()["error"]["message"]
    lease = claim(client)
    assert lease is not None
    log_points(client, created["run_id"], points("loss", range(10)))
    failed = client.post(
        f"{API}/jobs/{created['id']}/fail",
        json={"lease_token": lease["lease_token"], "error": "CUDA out of memory"},
    )
    assert failed.json()["status"] == "failed"
    assert run_of(client, created["id"])["status"] == "failed"

    response = client.post(f"{API}/jobs/{created['id']}/retry")
    assert response.status_code == 200
    retried = response.json()
    assert (retried["status"], retried["error"], retried["ended_at"]) == ("queued", None, None)
    assert (retried["attempts"], retried["max_attempts"]) == (1, 4)
    run = run_of(client, created["id"])
    assert (run["id"], run["status"], run["ended_at"]) == (created["run_id"], "queued", None)
    assert run["last_step"] == 9  # the retry overwrites these points from step 0
    again = claim(client)
    assert again is not None and again["job"]["attempts"] == 2
    assert again["lease_token"] != lease["lease_token"]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_retried_job_whose_run_was_deleted_gets_a_new_run(client: TestClient) -> None:
    created = submit(client)
    client.post(f"{API}/jobs/{created['id']}/cancel")
    assert client.delete(f"{API}/runs/{created['run_id']}").status_code == 204
    assert job(client, created["id"])["run_id"] is None
    retried = client.post(f"{API}/jobs/{created['id']}/retry").json()
    assert retried["run_id"] is not None
    assert run_of(client, created["id"])["external_id"] == f"job-{created['id']}"
