"""Sweeps: grid expansion (validated, capped), counts and status, cancel, delete."""

from __future__ import annotations

import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import Engine, func, make_url, select
from sqlalchemy.orm import Session

from momentum.contract import GridError, Status, SweepCreate, expand_grid, sweep_status
from service import Settings, create_app
from service.models import Job, Run, Sweep
from tests.jobs_support import API, TINY, claim, job
from tests.support import ServerProcess

# Far over the default cap of 256, as an attacker would send it: compared pairwise for
# repeats, its values held SQLite's write lock for seconds.
HUGE_GRID = {"seed": list(range(40_000))}


def _sweep(client: TestClient, **body: Any) -> dict[str, Any]:
    payload = {"name": "mu", "base": TINY, "grid": {"momentum": [0.0, 0.9], "seed": [0, 1]}}
    response = client.post(f"{API}/sweeps", json={**payload, **body})
    assert response.status_code == 201, response.text
    return response.json()


def _problem(base: dict[str, Any], grid: dict[str, list[Any]], cap: int = 256) -> dict[str, Any]:
    with pytest.raises(GridError) as caught:
        expand_grid(base, grid, cap)
    return caught.value.items[0]


def test_expand_grid_validates_every_combination_and_points_at_the_culprit() -> None:
    combos = expand_grid(TINY, {"momentum": [0.0, 0.5], "optimizer": ["sgd", "nesterov"]}, 4)
    assert [(c.momentum, c.optimizer) for _, c in combos] == [
        (0.0, "sgd"),
        (0.0, "nesterov"),
        (0.5, "sgd"),
        (0.5, "nesterov"),
    ]
    assert combos[1][0] == {"momentum": 0.0, "optimizer": "nesterov"}
    assert _problem(TINY, {"momentum": [0.5, 1.5]})["loc"] == ["grid", "momentum", 1]
    assert _problem({**TINY, "lr": -1}, {"seed": [0]})["loc"] == ["base", "lr"]
    assert _problem(TINY, {"momentun": [0.5]})["loc"] == ["grid", "momentun"]
    combination = _problem({"dataset": "ravine"}, {"model": ["linear", "cnn"]})
    assert combination["loc"] == ["grid"]
    assert "model='cnn'" in combination["msg"] and "needs dataset 'digits'" in combination["msg"]
    assert len(expand_grid({"dataset": "ravine"}, {"model": ["linear"]}, 1)) == 1
    # No model named: each combination gets the one its dataset needs.
    combos = expand_grid({}, {"dataset": ["ravine", "digits"]}, 2)
    assert [(c.dataset, c.model) for _, c in combos] == [("ravine", "linear"), ("digits", "mlp")]
    assert "needs model 'linear'" in _problem({"model": "mlp"}, {"dataset": ["ravine"]})["msg"]


def test_expand_grid_refuses_a_grid_past_the_cap_before_expanding() -> None:
    problem = _problem(TINY, {"seed": list(range(100)), "lr": [0.1, 0.2, 0.3]}, cap=256)
    assert problem["loc"] == ["grid"]
    assert "300 combinations" in problem["msg"] and "cap is 256" in problem["msg"]


def test_sweep_status_follows_its_jobs() -> None:
    def status(**counts: int) -> Status:
        return sweep_status({Status(name): n for name, n in counts.items()})

    assert status(queued=3) == Status.queued
    assert status(queued=2, succeeded=1) == Status.running
    assert status(running=1, succeeded=2) == Status.running
    assert status(succeeded=3) == Status.succeeded
    assert status(succeeded=2, failed=1) == Status.failed
    assert status(succeeded=1, cancelled=1, failed=1) == Status.cancelled


def test_create_expands_the_grid_into_jobs_and_runs_whose_status_it_follows(
    client: TestClient,
) -> None:
    sweep = _sweep(client, project="sweeps", tags={"study": "mu"})
    assert len(sweep["job_ids"]) == 4
    assert sweep["status"] == "queued" and sweep["counts"]["queued"] == 4
    assert sweep["grid"] == {"momentum": [0.0, 0.9], "seed": [0, 1]}
    jobs = [job(client, job_id) for job_id in sweep["job_ids"]]
    assert [(j["config"]["momentum"], j["config"]["seed"]) for j in jobs] == [
        (0.0, 0),
        (0.0, 1),
        (0.9, 0),
        (0.9, 1),
    ]
    assert jobs[3]["name"] == "mu momentum=0.9 seed=1"
    assert {j["sweep_id"] for j in jobs} == {sweep["id"]}
    runs = client.get(f"{API}/runs", params={"sweep_id": sweep["id"], "sort": "name"}).json()
    assert runs["total"] == 4
    assert {r["project"] for r in runs["items"]} == {"sweeps"}
    assert {r["tags"]["study"] for r in runs["items"]} == {"mu"}
    assert sorted(r["momentum"] for r in runs["items"]) == [0.0, 0.0, 0.9, 0.9]
    listed = client.get(f"{API}/jobs", params={"sweep_id": sweep["id"]}).json()
    assert sorted(item["id"] for item in listed["items"]) == sweep["job_ids"]
    assert client.get(f"{API}/sweeps").json()["items"][0]["id"] == sweep["id"]
    # Status and counts follow the jobs.
    leases = [claim(client, f"w{i}") for i in range(4)]
    url = f"{API}/sweeps/{sweep['id']}"
    assert client.get(url).json()["status"] == "running"
    for lease in leases:
        assert lease is not None
        done = {"lease_token": lease["lease_token"]}
        client.post(f"{API}/jobs/{lease['job']['id']}/complete", json=done)
    finished = client.get(url).json()
    assert finished["status"] == "succeeded" and finished["counts"]["succeeded"] == 4


# Validation happens before any database work: one backend is enough.
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_rejected_sweeps_write_nothing(client: TestClient, engine: Engine) -> None:
    cases = [
        ({"momentum": [0.5, 1.5]}, ["grid", "momentum", 1]),
        ({"seed": list(range(300))}, ["grid"]),
        ({"momentum": [0.5, 0.5]}, ["grid"]),
        ({"momentum": []}, ["grid"]),
    ]
    for grid, loc in cases:
        response = client.post(f"{API}/sweeps", json={"name": "bad", "base": TINY, "grid": grid})
        assert response.status_code == 422, grid
        assert response.json()["error"]["detail"][0]["loc"] == loc
    too_big = client.post(f"{API}/sweeps", json={"name": "x", "grid": {"seed": list(range(257))}})
    assert "257 combinations; the cap is 256" in too_big.json()["error"]["message"]
    with Session(engine) as session:
        for table in (Sweep, Job, Run):
            assert session.scalar(select(func.count()).select_from(table)) == 0


def test_cancel_ends_queued_jobs_and_flags_running_ones(client: TestClient) -> None:
    sweep = _sweep(client)
    lease = claim(client)
    assert lease is not None
    response = client.post(f"{API}/sweeps/{sweep['id']}/cancel")
    assert response.status_code == 200
    assert response.json()["counts"] == {
        "queued": 0,
        "running": 1,
        "succeeded": 0,
        "failed": 0,
        "cancelled": 3,
    }
    assert job(client, lease["job"]["id"])["cancel_requested"] is True
    beat = client.post(
        f"{API}/jobs/{lease['job']['id']}/heartbeat", json={"lease_token": lease["lease_token"]}
    )
    assert beat.json()["cancel"] is True
    stop = {"lease_token": lease["lease_token"], "error": "cancelled", "cancelled": True}
    client.post(f"{API}/jobs/{lease['job']['id']}/fail", json=stop)
    assert client.get(f"{API}/sweeps/{sweep['id']}").json()["status"] == "cancelled"


def test_delete_removes_jobs_but_keeps_runs_detached(client: TestClient) -> None:
    sweep = _sweep(client)
    lease = claim(client)
    assert lease is not None
    refused = client.delete(f"{API}/sweeps/{sweep['id']}")
    assert refused.status_code == 409 and "running jobs" in refused.json()["error"]["message"]
    client.post(f"{API}/sweeps/{sweep['id']}/cancel")
    stop = {"lease_token": lease["lease_token"], "error": "cancelled", "cancelled": True}
    client.post(f"{API}/jobs/{lease['job']['id']}/fail", json=stop)
    assert client.delete(f"{API}/sweeps/{sweep['id']}").status_code == 204
    assert client.get(f"{API}/sweeps/{sweep['id']}").status_code == 404
    assert client.get(f"{API}/jobs").json()["total"] == 0
    runs = client.get(f"{API}/runs").json()
    assert runs["total"] == 4
    assert {(r["sweep_id"], r["external_id"]) for r in runs["items"]} == {(None, None)}
    assert client.get(f"{API}/workers").json()["items"][0]["current_job_id"] is None
    # A new job never resumes a kept run, even where SQLite reuses the deleted job ids.
    fresh = client.post(f"{API}/jobs", json={"config": TINY}).json()
    assert fresh["run_id"] not in {r["id"] for r in runs["items"]}


def test_repeats_in_a_grid_are_found_by_hashing() -> None:
    """Pairwise comparison made 100,000 values a matter of minutes; hashing, of a blink."""
    started = time.perf_counter()
    SweepCreate.model_validate({"name": "big", "grid": {"seed": list(range(100_000))}})
    assert time.perf_counter() - started < 5  # pairwise: 99 s on these machines
    repeated = [
        [0, 1, 0.0],  # one value to TrainingConfig
        [{"a": 1, "b": [1, 2]}, {"b": [1, 2], "a": 1}],
        [*range(100_000), 99_999],
    ]
    for values in repeated:
        with pytest.raises(ValidationError, match="repeats the value"):
            SweepCreate.model_validate({"name": "s", "grid": {"seed": values}})
    distinct = [[1, 2], [2, 1], {"a": [1, 2]}, {"a": [2, 1]}, "1", 1]
    SweepCreate.model_validate({"name": "s", "grid": {"seed": distinct}})


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_refused_grid_never_waits_for_the_write_lock(settings: Settings) -> None:
    """The grid is validated before the request's write transaction begins: with another
    connection holding SQLite's write lock, bad grids still get their 422 (not a 503 after
    the busy timeout), and a good one waits for the lock as it should."""
    quick = settings.model_copy(update={"sqlite_busy_timeout_ms": 200})
    database = make_url(settings.database_url).database
    assert database is not None
    with TestClient(create_app(quick)) as client:
        holder = sqlite3.connect(database, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            for grid in (HUGE_GRID, {"momentum": [0.5, 1.5]}, {"seed": [1, 1]}):
                body = {"name": "bad", "base": TINY, "grid": grid}
                response = client.post(f"{API}/sweeps", json=body)
                assert response.status_code == 422, response.text
            refused = client.post(f"{API}/sweeps", json={"name": "big", "grid": HUGE_GRID})
            assert "40000 combinations; the cap is 256" in refused.json()["error"]["message"]
            good = {"name": "ok", "base": TINY, "grid": {"seed": [1, 2]}}
            assert client.post(f"{API}/sweeps", json=good).status_code == 503
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert client.post(f"{API}/sweeps", json=good).status_code == 201


@pytest.mark.e2e
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_huge_grid_leaves_other_writers_alone_through_the_real_server(
    database_url: str, tmp_path: Path
) -> None:
    """Two server processes on one SQLite file (what `--workers 2` runs): while one
    refuses a 40,000-value grid, metric writes through the other all go through; they
    used to wait past the busy timeout and get "database is locked"."""
    env = {
        "MOMENTUM_DATABASE_URL": database_url,
        "MOMENTUM_DATA_DIR": str(tmp_path),
        "MOMENTUM_SQLITE_BUSY_TIMEOUT_MS": "1000",
    }
    with ServerProcess(env) as sweeper, ServerProcess(env) as ingest:
        sweeps_url = f"{sweeper.start()}{API}/sweeps"
        with httpx.Client(base_url=ingest.start(), timeout=30) as writer:
            assert writer.post(f"{API}/runs", json={"name": "r"}).status_code == 201
            body = {"name": "huge", "base": TINY, "grid": HUGE_GRID}
            statuses: list[int] = []
            with ThreadPoolExecutor(1) as pool:
                sweep = pool.submit(httpx.post, sweeps_url, json=body, timeout=120)
                while not sweep.done() or not statuses:
                    point = {"key": "loss", "step": len(statuses), "value": 1.0}
                    logged = writer.post(f"{API}/runs/1/metrics", json={"points": [point]})
                    statuses.append(logged.status_code)
                refused = sweep.result()
    assert refused.status_code == 422, refused.text
    assert "40000 combinations" in refused.json()["error"]["message"]
    assert set(statuses) == {200}, statuses
