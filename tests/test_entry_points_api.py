"""Entry points on the service: registration and listing, jobs and sweeps whose params
are checked against the current definition, claims matched by name and digest."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine

from service import Settings, create_app
from tests.entry_point_support import (
    TRAIN,
    TRAIN_DEFAULTS,
    digest_of,
    edited,
    register,
    registration,
)
from tests.jobs_support import API, run_of, submit
from tests.test_bad_input import snapshot

TOKENS = {"token": "full-secret", "worker_token": "worker-secret", "read_token": "read-secret"}


def _listed(client: TestClient) -> list[dict[str, Any]]:
    response = client.get(f"{API}/entry-points")
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["total"] == len(page["items"])
    return list(page["items"])


def test_registering_again_is_idempotent_and_a_new_digest_becomes_current(
    client: TestClient,
) -> None:
    first = register(client, worker_id="w1")
    assert first.status_code == 201, first.text
    shown = first.json()
    assert (shown["name"], shown["digest"], shown["current"]) == ("train", digest_of(TRAIN), True)
    assert shown["command"] == ["python", "train.py"] and shown["total_param"] == "steps"
    assert shown["params"]["momentum"]["max"] == 1.0 and shown["workers"] == ["w1"]
    again = register(client, worker_id="w1")
    assert again.status_code == 200, again.text
    assert register(client, worker_id="w2").status_code == 200
    assert register(client, worker_id=None).status_code == 200
    (only,) = _listed(client)
    assert only["workers"] == ["w1", "w2"] and only["registered_at"] == shown["registered_at"]
    # w2 edits its momentum.toml: a new digest, the name's current definition from now on.
    changed = edited(momentum={"max": 0.99})
    newer = register(client, changed, worker_id="w2")
    assert newer.status_code == 201, newer.text
    listed = _listed(client)
    assert [e["digest"] for e in listed] == [digest_of(changed), digest_of(TRAIN)]
    assert [e["workers"] for e in listed] == [["w2"], ["w1"]]
    assert [e["current"] for e in listed] == [True, False]
    current = client.get(f"{API}/entry-points/train").json()
    assert current["digest"] == digest_of(changed)
    # w1 starts again with the old file: that definition is the newest registration again.
    assert register(client, worker_id="w1").status_code == 200
    assert client.get(f"{API}/entry-points/train").json()["digest"] == digest_of(TRAIN)
    missing = client.get(f"{API}/entry-points/eval")
    assert missing.status_code == 404 and "eval" in missing.json()["error"]["message"]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_bad_registration_is_a_422_naming_the_field(client: TestClient, engine: Engine) -> None:
    before = snapshot(engine)

    def refused(body: dict[str, Any], name: str = "train") -> dict[str, Any]:
        response = client.put(f"{API}/entry-points/{name}", json=body)
        assert response.status_code == 422, response.text
        return dict(response.json()["error"])

    error = refused({**registration(TRAIN), "digest": "0" * 64})
    assert "digest" in error["message"]
    error = refused({**registration(TRAIN), "digest": "not-hex"})
    assert error["detail"][0]["loc"] == ["digest"]
    bad_spec = edited(momentum={"min": 2.0})  # min above max
    error = refused({**bad_spec, "digest": "0" * 64})
    assert error["detail"][0]["loc"][:2] == ["params", "momentum"]
    assert "greater than max" in error["message"]
    error = refused({**registration(TRAIN), "total_param": "arch"})
    assert "total_param" in error["message"]
    error = refused(registration(TRAIN), name="-train")
    assert error["detail"][0]["loc"] == ["path", "name"]
    assert snapshot(engine) == before


@pytest.fixture
def guarded(settings: Settings) -> Iterator[TestClient]:
    secrets = {name: SecretStr(value) for name, value in TOKENS.items()}
    with TestClient(create_app(settings.model_copy(update=secrets))) as client:
        yield client


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_workers_register_and_readers_only_read(guarded: TestClient) -> None:
    def bearer(name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {TOKENS[name]}"}

    assert register(guarded, headers=bearer("read_token")).status_code == 403
    assert register(guarded, headers=bearer("worker_token")).status_code == 201
    assert register(guarded, headers=bearer("token")).status_code == 200
    listed = guarded.get(f"{API}/entry-points", headers=bearer("read_token"))
    assert listed.status_code == 200 and listed.json()["total"] == 1
    # Submitting work stays the full token's.
    body = {"entry_point": "train"}
    assert guarded.post(f"{API}/jobs", json=body, headers=bearer("worker_token")).status_code == 403


def test_an_entry_point_job_gets_the_full_params_and_so_does_its_run(client: TestClient) -> None:
    assert register(client).status_code == 201
    created = submit(
        client,
        config=None,
        entry_point="train",
        params={"momentum": 0.5, "seed": 3},
        tags={"a": "b"},
    )
    full = {**TRAIN_DEFAULTS, "momentum": 0.5, "seed": 3}
    assert created["config"] is None and created["params"] == full
    assert (created["entry_point"], created["entry_point_digest"]) == ("train", digest_of(TRAIN))
    assert (created["framework"], created["device"]) == ("entry_point", "auto")
    assert created["status"] == "queued" and created["progress_total"] is None
    run = run_of(client, created["id"])
    assert run["params"] == full and run["tags"] == {"a": "b"}
    assert (run["momentum"], run["lr"]) == (0.5, 0.01)
    # An int given for a float param is that float; runs filter on the indexed copy.
    other = submit(client, config=None, entry_point="train", params={"momentum": 0})
    assert other["params"]["momentum"] == 0.0
    query = {"momentum_min": 0.4, "param": ["arch:mlp", "seed:3"]}
    found = client.get(f"{API}/runs", params=query).json()["items"]
    assert [r["id"] for r in found] == [created["run_id"]]


def test_bad_entry_point_jobs_are_422s_that_name_the_param_and_write_nothing(
    client: TestClient, engine: Engine
) -> None:
    assert register(client).status_code == 201
    before = snapshot(engine)

    def refused(body: dict[str, Any]) -> dict[str, Any]:
        response = client.post(f"{API}/jobs", json=body)
        assert response.status_code == 422, response.text
        assert snapshot(engine) == before
        return dict(response.json()["error"])

    error = refused({"entry_point": "eval"})
    assert error["detail"][0]["loc"] == ["entry_point"] and "eval" in error["message"]
    error = refused({"entry_point": "train", "params": {"momentum": 1.5}})
    assert error["detail"][0]["loc"] == ["params", "momentum"]
    assert "at most 1.0" in error["message"] and "from 0.0 to 1.0" in error["message"]
    error = refused({"entry_point": "train", "params": {"momentun": 0.9}})
    assert error["detail"][0]["loc"] == ["params", "momentun"]
    assert "unknown param" in error["message"] and "'momentum'" in error["message"]
    error = refused({"entry_point": "train", "params": {"seed": "5"}})
    assert error["detail"][0]["loc"] == ["params", "seed"] and "an int" in error["message"]
    error = refused({"entry_point": "train", "params": {"arch": "rnn"}})
    assert "['mlp', 'cnn']" in error["message"]
    error = refused({"entry_point": "train", "params": {"seed": 1.5, "steps": 0}})
    assert [item["loc"] for item in error["detail"]] == [["params", "seed"], ["params", "steps"]]
    error = refused({"entry_point": "train", "config": {"dataset": "ravine"}})
    assert "exactly one" in error["message"]
    error = refused({"config": {"dataset": "ravine"}, "params": {"momentum": 0.5}})
    assert "params go with an entry_point" in error["message"]


def test_a_required_param_must_be_given(client: TestClient, engine: Engine) -> None:
    definition = {"command": ["python", "t.py"], "params": {"data": {"type": "str"}}}
    assert register(client, definition, name="needs").status_code == 201
    before = snapshot(engine)
    response = client.post(f"{API}/jobs", json={"entry_point": "needs"})
    assert response.status_code == 422
    assert response.json()["error"]["detail"][0]["loc"] == ["params", "data"]
    assert "required" in response.json()["error"]["message"]
    assert snapshot(engine) == before
    created = submit(client, config=None, entry_point="needs", params={"data": "x"})
    assert created["params"] == {"data": "x"}
