"""A whole sweep (MOMENTUM_MAX_GRID_SIZE runs, 256 by default) compares in one request:
groups, summary and curves take its run ids, past MOMENTUM_MAX_COMPARE_RUNS, and the
curves stay bounded by what MOMENTUM_MAX_COMPARE_RUNS runs would answer (#19)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient

from service import Settings, create_app
from tests.test_worker_e2e import sqlite_server

BASE = {"dataset": "ravine", "model": "linear", "steps": 5}
STEPS = 5


def _grid(momenta: int, seeds: int) -> dict[str, list[Any]]:
    return {"momentum": [round(0.06 * i, 2) for i in range(momenta)], "seed": list(range(seeds))}


def _sweep_run_ids(api: httpx.Client | TestClient, grid: dict[str, list[Any]]) -> list[int]:
    """A sweep (no worker: its runs are logged to by hand) and its run ids."""
    created = api.post("/api/v1/sweeps", json={"name": "wide", "base": BASE, "grid": grid})
    assert created.status_code == 201, created.text
    jobs = api.get("/api/v1/jobs", params={"sweep_id": created.json()["id"], "limit": 1000})
    run_ids = [job["run_id"] for job in jobs.json()["items"]]
    for index, run_id in enumerate(run_ids):
        points = [
            {"key": "loss", "step": step, "value": 1.0 / (1 + step + index % 7)}
            for step in range(STEPS)
        ]
        logged = api.post(f"/api/v1/runs/{run_id}/metrics", json={"points": points})
        assert logged.status_code == 200, logged.text
    return run_ids


def _check_the_whole_sweep_compares(
    api: httpx.Client | TestClient, grid: dict[str, list[Any]], compare_runs: int
) -> None:
    run_ids = _sweep_run_ids(api, grid)
    ids = ",".join(map(str, run_ids))

    def get(path: str, **params: Any) -> Any:
        response = api.get(f"/api/v1{path}", params={"run_ids": ids, **params})
        assert response.status_code == 200, response.text
        return response.json()

    groups = get("/compare/groups", key="loss", by="momentum")["groups"]
    assert [group["value"] for group in groups] == grid["momentum"]
    assert all(group["runs"] == len(grid["seed"]) for group in groups)
    summary = get("/compare/summary", key="loss")
    assert sorted(summary["ranking"]) == sorted(run_ids) and len(summary["runs"]) == len(run_ids)
    curves = get("/compare", keys="loss", max_points=10)["series"]
    assert len(curves) == len(run_ids)
    assert sum(len(c["steps"]) for c in curves) <= compare_runs * 10
    assert all(c["downsampled"] and c["total"] == STEPS for c in curves)
    one_more = api.get("/api/v1/compare/groups", params={"run_ids": f"{ids},999999", "key": "x"})
    assert one_more.status_code == 422
    error = one_more.json()["error"]
    assert error["detail"][0]["loc"] == ["query", "run_ids"]
    assert f"at most {len(run_ids)}" in error["message"]


def test_a_whole_sweep_compares_in_one_request(settings: Settings) -> None:
    capped = settings.model_copy(update={"max_grid_size": 24, "max_compare_runs": 10})
    with TestClient(create_app(capped)) as client:
        _check_the_whole_sweep_compares(client, _grid(4, 6), compare_runs=10)


def test_a_256_run_sweep_compares_through_the_real_server(
    sqlite_template: Path, tmp_path: Path
) -> None:
    """The defaults: MOMENTUM_MAX_GRID_SIZE 256, MOMENTUM_MAX_COMPARE_RUNS 100."""
    with (
        sqlite_server(sqlite_template, tmp_path) as url,
        httpx.Client(base_url=url, timeout=60) as api,
    ):
        _check_the_whole_sweep_compares(api, _grid(16, 16), compare_runs=100)
