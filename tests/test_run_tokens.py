"""Run tokens (issue 17 item 7, SECURITY.md): a claim's `run_token` reads, and writes
only its job's run (metrics, heartbeat, PATCH of status/diverged/tags, MLflow's logging
and update of that run), until the job's lease ends. On SQLite and PostgreSQL; the last
test through a real `momentum serve`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from service import Settings, create_app, run_tokens
from service.storage import leases
from tests.jobs_support import TINY, expire_lease
from tests.support import ServerProcess
from tests.test_auth import TOKENS

API = "/api/v1"
MLFLOW = "/api/2.0/mlflow"
FULL = {"Authorization": f"Bearer {TOKENS['token']}"}
WORKER = {"Authorization": f"Bearer {TOKENS['worker_token']}"}
POINTS = {"points": [{"key": "loss", "step": 0, "value": 1.5}]}
CLAIM = {"worker_id": "w1", "device": "cpu", "frameworks": ["torch"]}


@pytest.fixture
def api(settings: Settings) -> Iterator[TestClient]:
    secrets = {name: SecretStr(value) for name, value in TOKENS.items()}
    # A lease longer than any test: only the test ends it.
    with TestClient(
        create_app(settings.model_copy(update={**secrets, "lease_seconds": 3600}))
    ) as client:
        yield client


@dataclass
class Claimed:
    job_id: int
    run_id: int
    lease_token: str
    run_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.run_token}"}


def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def claim_one(api: TestClient | httpx.Client) -> Claimed:
    """Submit a job (full token) and claim it (worker token): the only queued job."""
    job = _ok(api.post(f"{API}/jobs", json={"config": TINY}, headers=FULL), 201)
    answer = _ok(api.post(f"{API}/jobs/claim", json=CLAIM, headers=WORKER))
    assert answer["job"]["id"] == job["id"]
    assert answer["run_token"].startswith("mmr.") and answer["run_token"] != answer["lease_token"]
    return Claimed(job["id"], job["run_id"], answer["lease_token"], answer["run_token"])


def assert_refused(response: httpx.Response, status: int, words: str = "") -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == ("unauthorized" if status == 401 else error["code"])
    assert words in error["message"], error


def series_keys(api: TestClient, run_id: int) -> list[str]:
    items = _ok(api.get(f"{API}/runs/{run_id}/metrics", headers=FULL))["items"]
    return [item["key"] for item in items]


def test_a_run_token_writes_its_own_run(api: TestClient) -> None:
    mine = claim_one(api)
    logged = _ok(api.post(f"{API}/runs/{mine.run_id}/metrics", json=POINTS, headers=mine.headers))
    assert logged == {"run_id": mine.run_id, "accepted": 1, "keys": ["loss"]}
    beat = _ok(api.post(f"{API}/runs/{mine.run_id}/heartbeat", headers=mine.headers))
    assert beat["status"] == "running"
    patch = {"status": "running", "diverged": True, "tags": {"phase": "warmup"}}
    _ok(api.patch(f"{API}/runs/{mine.run_id}", json=patch, headers=mine.headers))
    run = _ok(api.get(f"{API}/runs/{mine.run_id}", headers=mine.headers))  # it reads, too
    assert run["diverged"] is True and run["tags"] == {"phase": "warmup"}
    assert run["latest"] == {"loss": 1.5} and run["last_heartbeat_at"] is not None
    for read in ("/runs", "/jobs", f"/runs/{mine.run_id}/metrics/loss", "/workers"):
        _ok(api.get(f"{API}{read}", headers=mine.headers))
    _ok(api.post(f"{MLFLOW}/runs/search", json={}, headers=mine.headers))


def test_a_run_token_cannot_write_another_run(api: TestClient) -> None:
    sdk = _ok(api.post(f"{API}/runs", json={"name": "other"}, headers=FULL), 201)["id"]
    other_job = claim_one(api)  # another job's run, running under its own lease
    mine = claim_one(api)
    for other in (sdk, other_job.run_id):
        before = _ok(api.get(f"{API}/runs/{other}", headers=FULL))
        refusals = [
            api.post(f"{API}/runs/{other}/metrics", json=POINTS, headers=mine.headers),
            api.post(f"{API}/runs/{other}/heartbeat", headers=mine.headers),
            api.patch(f"{API}/runs/{other}", json={"tags": {"x": "y"}}, headers=mine.headers),
            api.patch(f"{API}/runs/0{other}", json={"tags": {"x": "y"}}, headers=mine.headers),
        ]
        for refused in refusals:
            assert_refused(refused, 403, f"this token may write only run {mine.run_id}")
        metric = {"run_id": str(other), "key": "loss", "value": 1.0, "timestamp": 1, "step": 0}
        tag = {"run_id": str(other), "key": "x", "value": "y"}
        for path, body in [
            ("log-metric", metric),
            ("log-batch", {"run_id": str(other), "metrics": [metric]}),
            ("set-tag", tag),
            ("log-parameter", tag),
            ("update", {"run_id": str(other), "status": "FAILED"}),
        ]:
            refused = api.post(f"{MLFLOW}/runs/{path}", json=body, headers=mine.headers)
            assert refused.status_code == 403, (path, refused.text)
            assert refused.json()["error_code"] == "PERMISSION_DENIED"
        assert _ok(api.get(f"{API}/runs/{other}", headers=FULL)) == before
        assert series_keys(api, other) == []


def test_a_run_token_sets_only_status_divergence_and_tags(api: TestClient) -> None:
    mine = claim_one(api)
    before = _ok(api.get(f"{API}/runs/{mine.run_id}", headers=FULL))
    for patch in (
        {"params": {"momentum": 0.5}},
        {"params": before["params"]},  # even unchanged: params are the job's
        {"name": "renamed"},
        {"status": "succeeded", "name": "renamed"},
    ):
        refused = api.patch(f"{API}/runs/{mine.run_id}", json=patch, headers=mine.headers)
        assert_refused(refused, 403, "a run token may set only")
    assert _ok(api.get(f"{API}/runs/{mine.run_id}", headers=FULL)) == before


def test_a_run_token_has_no_other_right(api: TestClient) -> None:
    """Not the worker protocol, not creating or deleting, not submitting, not another
    job's protocol: 403 before the body is read, and nothing changes."""
    mine = claim_one(api)
    lease = {"lease_token": mine.lease_token}
    forbidden = [
        ("POST", f"{API}/jobs/claim", CLAIM),
        ("POST", f"{API}/jobs/{mine.job_id}/heartbeat", lease),
        ("POST", f"{API}/jobs/{mine.job_id}/complete", lease),
        ("POST", f"{API}/jobs/{mine.job_id}/fail", {**lease, "error": "x"}),
        ("POST", f"{API}/jobs/{mine.job_id}/release", lease),
        ("POST", f"{API}/jobs/{mine.job_id}/cancel", None),
        ("POST", f"{API}/jobs", {"config": TINY}),
        ("POST", f"{API}/sweeps", {"name": "s", "base": TINY, "grid": {"seed": [0]}}),
        ("POST", f"{API}/runs", {"name": "new"}),
        ("DELETE", f"{API}/runs/{mine.run_id}", None),
        ("POST", f"{MLFLOW}/runs/create", {}),
        ("POST", f"{MLFLOW}/experiments/create", {"name": "e"}),
        ("POST", f"{MLFLOW}/runs/delete", {"run_id": str(mine.run_id)}),
    ]
    for method, path, body in forbidden:
        response = api.request(method, path, json=body, headers=mine.headers)
        assert response.status_code == 403, (method, path, response.text)
    job = _ok(api.get(f"{API}/jobs/{mine.job_id}", headers=FULL))
    assert job["status"] == "running" and job["cancel_requested"] is False
    assert _ok(api.get(f"{API}/runs", headers=FULL))["total"] == 1
    assert _ok(api.get(f"{API}/jobs", headers=FULL))["total"] == 1


def test_mlflow_logs_to_its_own_run_with_a_run_token(api: TestClient) -> None:
    """What `mlflow.start_run()` with MLFLOW_RUN_ID and a script's logging send."""
    mine = claim_one(api)
    run_id = str(mine.run_id)
    got = _ok(api.get(f"{MLFLOW}/runs/get", params={"run_id": run_id}, headers=mine.headers))
    params = {p["key"]: p["value"] for p in got["run"]["data"]["params"]}
    metric = {"key": "acc", "value": 0.5, "timestamp": 1, "step": 3}
    sent = [
        ("update", {"run_id": run_id, "status": "RUNNING"}),
        ("log-metric", {"run_id": run_id, **metric}),
        ("log-batch", {"run_id": run_id, "metrics": [{**metric, "step": 4}]}),
        # The job's own params again, as scripts log them: unchanged, so allowed.
        ("log-batch", {"run_id": run_id, "params": [{"key": "steps", "value": params["steps"]}]}),
        ("set-tag", {"run_id": run_id, "key": "stage", "value": "train"}),
    ]
    for path, body in sent:
        _ok(api.post(f"{MLFLOW}/runs/{path}", json=body, headers=mine.headers))
    new_param = {"run_id": run_id, "key": "extra", "value": "1"}
    refused = api.post(f"{MLFLOW}/runs/log-parameter", json=new_param, headers=mine.headers)
    assert refused.status_code == 403 and "params" in refused.json()["message"]
    rename = {"run_id": run_id, "run_name": "renamed"}
    assert api.post(f"{MLFLOW}/runs/update", json=rename, headers=mine.headers).status_code == 403
    run = _ok(api.get(f"{API}/runs/{mine.run_id}", headers=FULL))
    assert run["latest"] == {"acc": 0.5} and run["tags"] == {"stage": "train"}
    assert "extra" not in run["params"] and run["name"] != "renamed"


ENDINGS = ["complete", "fail", "release", "lapsed and taken back", "lapsed and claimed again"]


@pytest.mark.parametrize("ending", ENDINGS)
def test_a_run_token_dies_with_its_lease(api: TestClient, engine: Engine, ending: str) -> None:
    mine = claim_one(api)
    _ok(api.post(f"{API}/runs/{mine.run_id}/metrics", json=POINTS, headers=mine.headers))
    lease = {"lease_token": mine.lease_token}
    if ending in ("complete", "release"):
        _ok(api.post(f"{API}/jobs/{mine.job_id}/{ending}", json=lease, headers=WORKER))
    elif ending == "fail":
        _ok(
            api.post(f"{API}/jobs/{mine.job_id}/fail", json={**lease, "error": "x"}, headers=WORKER)
        )
    else:
        expire_lease(engine, mine.job_id)  # its worker went silent
    if ending == "lapsed and taken back":
        with Session(engine) as session, session.begin():
            assert leases.reap_lapsed_leases(session) == 1  # what the reaper does
    if ending == "lapsed and claimed again":  # the claim takes it back first
        again = _ok(api.post(f"{API}/jobs/claim", json=CLAIM, headers=WORKER))
        assert again["job"]["id"] == mine.job_id and again["run_token"] != mine.run_token
        renewed = {"Authorization": f"Bearer {again['run_token']}"}
        _ok(api.get(f"{API}/runs/{mine.run_id}", headers=renewed))
    late = {"points": [{"key": "late", "step": 1, "value": 2.0}]}
    for response in (
        api.post(f"{API}/runs/{mine.run_id}/metrics", json=late, headers=mine.headers),
        api.post(f"{API}/runs/{mine.run_id}/heartbeat", headers=mine.headers),
        api.patch(f"{API}/runs/{mine.run_id}", json={"tags": {"a": "b"}}, headers=mine.headers),
        api.get(f"{API}/runs", headers=mine.headers),
    ):
        assert_refused(response, 401, "lease has ended")
    assert series_keys(api, mine.run_id) == ["loss"]


def test_a_late_worker_keeps_its_run_token(api: TestClient, engine: Engine) -> None:
    """A lapsed lease not yet taken back is honoured, for the worker and for its run
    token alike: nobody else owns the job, and the late heartbeat renews it."""
    mine = claim_one(api)
    expire_lease(engine, mine.job_id)
    _ok(api.post(f"{API}/runs/{mine.run_id}/metrics", json=POINTS, headers=mine.headers))
    beat = {"lease_token": mine.lease_token}
    _ok(api.post(f"{API}/jobs/{mine.job_id}/heartbeat", json=beat, headers=WORKER))
    _ok(api.post(f"{API}/runs/{mine.run_id}/heartbeat", headers=mine.headers))
    assert series_keys(api, mine.run_id) == ["loss"]


def test_forged_and_malformed_run_tokens_are_401(api: TestClient) -> None:
    mine = claim_one(api)
    other = claim_one(api)
    mac = mine.run_token.rsplit(".", 1)[1]
    flipped = mac[:-1] + ("A" if mac[-1] != "A" else "B")
    forged = [
        f"mmr.{mine.job_id}.{flipped}",  # a wrong mac
        f"mmr.{other.job_id}.{mac}",  # another job's
        f"mmr.999999.{mac}",  # no such job
        f"mmr.0{mine.job_id}.{mac}",  # not how the server writes it
        # the job's lease, but another run: the mac covers the run
        run_tokens.mint(mine.job_id, other.run_id, mine.lease_token),
        f"mmr.{mine.job_id}",
        f"mmr.{mine.job_id}.",
        f"mmr..{mac}",
        f"mmr.x.{mac}",
        mine.run_token + "x",
        "mmr." + "9" * 5000 + "." + mac,
        "mmr.",
    ]
    for token in forged:
        headers = {"Authorization": f"Bearer {token}"}
        response = api.post(f"{API}/runs/{mine.run_id}/metrics", json=POINTS, headers=headers)
        assert_refused(response, 401)
        assert_refused(api.get(f"{API}/runs", headers=headers), 401)
    assert series_keys(api, mine.run_id) == []


def test_without_tokens_the_claim_still_carries_a_run_token(client: TestClient) -> None:
    """An open server hands out the run token too (so a worker treats both alike); like
    any token there, it restricts nothing."""
    job = _ok(client.post(f"{API}/jobs", json={"config": TINY}), 201)
    answer = _ok(client.post(f"{API}/jobs/claim", json=CLAIM))
    assert answer["run_token"] == run_tokens.mint(job["id"], job["run_id"], answer["lease_token"])


@pytest.mark.e2e
def test_run_token_through_the_real_server(database_url: str) -> None:
    env = {
        "MOMENTUM_DATABASE_URL": database_url,
        "MOMENTUM_TOKEN": TOKENS["token"],
        "MOMENTUM_WORKER_TOKEN": TOKENS["worker_token"],
        "MOMENTUM_READ_TOKEN": TOKENS["read_token"],
    }
    with ServerProcess(env) as server, httpx.Client(base_url=server.start(), timeout=30) as http:
        other = _ok(http.post(f"{API}/runs", json={"name": "other"}, headers=FULL), 201)["id"]
        mine = claim_one(http)
        _ok(http.post(f"{API}/runs/{mine.run_id}/metrics", json=POINTS, headers=mine.headers))
        _ok(http.post(f"{API}/runs/{mine.run_id}/heartbeat", headers=mine.headers))
        _ok(
            http.patch(
                f"{API}/runs/{mine.run_id}", json={"status": "running"}, headers=mine.headers
            )
        )
        refused = http.post(f"{API}/runs/{other}/metrics", json=POINTS, headers=mine.headers)
        assert_refused(refused, 403, f"this token may write only run {mine.run_id}")
        assert_refused(http.post(f"{API}/jobs/claim", json=CLAIM, headers=mine.headers), 403)
        complete = {"lease_token": mine.lease_token}
        _ok(http.post(f"{API}/jobs/{mine.job_id}/complete", json=complete, headers=WORKER))
        late = http.post(f"{API}/runs/{mine.run_id}/metrics", json=POINTS, headers=mine.headers)
        assert_refused(late, 401, "lease has ended")
        history = _ok(http.get(f"{API}/runs/{mine.run_id}/metrics/loss", headers=FULL))
        assert history["steps"] == [0]
        assert _ok(http.get(f"{API}/runs/{other}/metrics", headers=FULL))["items"] == []
