"""Sweeps over an entry point's params, and claims matched by entry point name and digest;
one test through a real `momentum serve`."""

from __future__ import annotations

import itertools
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.entry_point_support import (
    TRAIN,
    TRAIN_DEFAULTS,
    claim_entry_points,
    digest_of,
    edited,
    ref,
    register,
)
from tests.jobs_support import API, claim, job, submit
from tests.support import live_server
from tests.test_bad_input import snapshot

GRID = {"momentum": [0, 0.5, 0.9], "seed": [0, 1]}


def _sweep(http: TestClient | httpx.Client, **fields: Any) -> httpx.Response:
    body = {"name": "mu", "entry_point": "train", "base": {"steps": 50}, "grid": GRID, **fields}
    return http.post(f"{API}/sweeps", json=body)


def _jobs(http: TestClient | httpx.Client, ids: list[int]) -> list[dict[str, Any]]:
    return [http.get(f"{API}/jobs/{job_id}").json() for job_id in ids]


def test_a_momentum_by_seed_sweep_queues_six_jobs_with_full_params(client: TestClient) -> None:
    assert register(client).status_code == 201
    response = _sweep(client)
    assert response.status_code == 201, response.text
    sweep = response.json()
    assert sweep["entry_point"] == "train" and sweep["grid"] == GRID
    jobs = _jobs(client, sweep["job_ids"])
    expected = [
        {**TRAIN_DEFAULTS, "steps": 50, "momentum": float(momentum), "seed": seed}
        for momentum, seed in itertools.product(GRID["momentum"], GRID["seed"])
    ]
    assert [j["params"] for j in jobs] == expected
    assert {j["entry_point_digest"] for j in jobs} == {digest_of(TRAIN)}
    assert all(j["config"] is None and j["sweep_id"] == sweep["id"] for j in jobs)
    assert jobs[1]["name"] == "mu momentum=0.0 seed=1"
    runs = client.get(f"{API}/runs", params={"sweep_id": sweep["id"], "limit": 10}).json()
    assert sorted(r["params"]["momentum"] for r in runs["items"]) == [0.0, 0.0, 0.5, 0.5, 0.9, 0.9]
    listed = client.get(f"{API}/sweeps").json()["items"]
    assert listed[0]["entry_point"] == "train"


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sweep_errors_point_into_base_or_grid_and_write_nothing(
    client: TestClient, engine: Engine
) -> None:
    assert register(client).status_code == 201
    required = {"command": ["t"], "params": {"data": {"type": "str"}}}
    assert register(client, required, name="needs").status_code == 201
    before = snapshot(engine)

    def located(response: httpx.Response) -> list[list[Any]]:
        assert response.status_code == 422, response.text
        assert snapshot(engine) == before
        return [item["loc"] for item in response.json()["error"]["detail"]]

    assert located(_sweep(client, entry_point="eval")) == [["entry_point"]]
    assert located(_sweep(client, grid={"momentum": [0.5, 1.5, 2]})) == [
        ["grid", "momentum", 1],
        ["grid", "momentum", 2],
    ]
    response = _sweep(client, base={"arch": "rnn"})
    assert located(response) == [["base", "arch"]]
    assert "['mlp', 'cnn']" in response.json()["error"]["message"]
    assert located(_sweep(client, grid={"momentun": [0.1]})) == [["grid", "momentun"]]
    assert located(_sweep(client, base={"nope": 1})) == [["base", "nope"]]
    big = {"seed": list(range(300))}
    response = _sweep(client, grid=big)
    assert located(response) == [["grid"]] and "MOMENTUM_MAX_GRID_SIZE" in response.text
    needs = _sweep(client, entry_point="needs", base={}, grid={"other": [1]})
    assert located(needs) == [["grid", "other"]]
    assert located(_sweep(client, entry_point="needs", base={}, grid={})) == [["base", "data"]]
    ok = _sweep(client, entry_point="needs", base={}, grid={"data": ["a", "b"]})
    assert ok.status_code == 201, ok.text


def test_claims_match_entry_point_name_and_digest(client: TestClient) -> None:
    assert register(client).status_code == 201
    old = submit(client, config=None, entry_point="train")
    changed = edited(steps={"default": 20})
    assert register(client, changed, worker_id="w2").status_code == 201
    new = submit(client, config=None, entry_point="train")
    assert new["entry_point_digest"] == digest_of(changed) and new["params"]["steps"] == 20
    built_in = submit(client)
    # A worker listing no entry points gets built-in work only.
    plain = claim(client, "old-style")
    assert plain is not None and plain["job"]["id"] == built_in["id"]
    assert claim(client, "old-style") is None
    # Same name, other digest, other name: none of these match.
    assert claim_entry_points(client, [ref(edited(seed={"default": 7}))], "w3") is None
    assert claim_entry_points(client, [{"name": "eval", "digest": digest_of(TRAIN)}]) is None
    # The edited worker gets only the job submitted under its definition...
    taken = claim_entry_points(client, [ref(changed)], "w2")
    assert taken is not None and taken["job"]["id"] == new["id"]
    assert claim_entry_points(client, [ref(changed)], "w2") is None
    # ...and a worker with the old definition, even one that no longer is current, the old job.
    taken = claim_entry_points(client, [ref(changed), ref(TRAIN)], "w1")
    assert taken is not None and taken["job"]["id"] == old["id"]
    assert taken["job"]["params"] == TRAIN_DEFAULTS and taken["job"]["config"] is None
    done = client.post(
        f"{API}/jobs/{old['id']}/complete", json={"lease_token": taken["lease_token"]}
    )
    assert done.status_code == 200, done.text
    # No heartbeat came: progress is the declared total_param's value.
    assert (done.json()["progress_step"], done.json()["progress_total"]) == (1000, 1000)
    assert job(client, old["id"])["status"] == "succeeded"


@pytest.mark.e2e
def test_entry_points_through_a_real_server(database_url: str) -> None:
    """Register as two workers, sweep, and claim each job by the worker that has its digest."""
    with live_server({"MOMENTUM_DATABASE_URL": database_url}) as url:
        with httpx.Client(base_url=url, timeout=30) as http:
            assert register(http, worker_id="w1").status_code == 201
            assert register(http, worker_id="w1").status_code == 200
            listed = http.get(f"{API}/entry-points").json()
            assert listed["items"][0]["workers"] == ["w1"] and listed["total"] == 1
            response = _sweep(http, grid={"momentum": [0.1, 0.2]})
            assert response.status_code == 201, response.text
            ids = response.json()["job_ids"]
            bad = http.post(f"{API}/jobs", json={"entry_point": "train", "params": {"lr": -1}})
            assert bad.status_code == 422
            assert bad.json()["error"]["detail"][0]["loc"] == ["params", "lr"]
            assert claim_entry_points(http, [ref(edited(lr={"min": 0.001}))], "w2") is None
            claimed = [claim_entry_points(http, [ref(TRAIN)], "w1") for _ in ids]
            assert [c["job"]["id"] for c in claimed if c] == ids
            assert [c["job"]["params"]["momentum"] for c in claimed if c] == [0.1, 0.2]
            assert claim_entry_points(http, [ref(TRAIN)], "w1") is None
