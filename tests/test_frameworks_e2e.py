"""One sweep, three frameworks: NumPy, Keras and PyTorch jobs trained by real workers.

The same rule (`momentum`, the classical one), data, seed, minibatches and initial weights
in each framework, so their loss curves must agree to float32 rounding. Each worker
claims only the frameworks it advertises.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.support import live_server, wait_until

pytestmark = pytest.mark.e2e

BASE = {
    "optimizer": "momentum",
    "momentum": 0.9,
    "lr": 0.1,
    "dataset": "ravine",
    "model": "linear",
    "steps": 200,
    "batch_size": 64,
    "eval_every": 50,
    "device": "cpu",
}
# Measured: the three curves differ by < 1e-6 of the first loss (NumPy runs float64,
# Keras and PyTorch float32). The loss falls ~1e4-fold over the run, so this also
# rules out curves that merely end near each other.
AGREEMENT = 1e-5


@pytest.fixture
def server(sqlite_template: Path, tmp_path: Path) -> Iterator[str]:
    database = tmp_path / "momentum.sqlite3"
    shutil.copyfile(sqlite_template, database)
    with live_server({"MOMENTUM_DATABASE_URL": f"sqlite:///{database}"}) as url:
        yield url


def start_worker(url: str, worker_id: str, frameworks: str, directory: Path) -> subprocess.Popen:
    argv = [sys.executable, "-m", "momentum.cli", "worker", "--url", url, "--worker-id"]
    argv += [worker_id, "--frameworks", frameworks, "--device", "cpu", "--threads", "1"]
    env = {**os.environ, "MOMENTUM_SPOOL_DIR": str(directory / "spool")}
    env.pop("MOMENTUM_TOKEN", None)
    with (directory / f"{worker_id}.log").open("wb") as log:
        return subprocess.Popen(
            [*argv, "--no-progress"], env=env, stdout=log, stderr=subprocess.STDOUT
        )


@pytest.fixture
def workers(server: str, tmp_path: Path) -> Iterator[list[subprocess.Popen]]:
    started = [
        start_worker(server, "w-numpy-keras", "numpy,keras", tmp_path),
        start_worker(server, "w-torch", "torch", tmp_path),
    ]
    try:
        yield started
    finally:
        for process in started:
            process.terminate()
        for process in started:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_a_sweep_over_frameworks_traces_one_loss_curve(
    server: str, workers: list[subprocess.Popen], tmp_path: Path
) -> None:
    with httpx.Client(base_url=f"{server}/api/v1", timeout=30) as api:
        body = {
            "name": "frameworks",
            "base": BASE,
            "grid": {"framework": ["numpy", "keras", "torch"]},
        }
        response = api.post("/sweeps", json=body)
        assert response.status_code == 201, response.text
        sweep = response.json()

        def done() -> bool:
            status = api.get(f"/sweeps/{sweep['id']}").json()["status"]
            assert status not in ("failed", "cancelled"), _logs(tmp_path)
            return status == "succeeded"

        wait_until(done, timeout=120)
        curves, owners = {}, {}
        for job_id in sweep["job_ids"]:
            job = api.get(f"/jobs/{job_id}").json()
            framework = job["config"]["framework"]
            owners[framework] = job["lease_owner"]
            series = api.get(f"/runs/{job['run_id']}/metrics/loss").json()
            assert series["steps"] == list(range(BASE["steps"])), framework  # each step once
            curves[framework] = np.asarray(series["values"], dtype=np.float64)
            run = api.get(f"/runs/{job['run_id']}").json()
            assert run["status"] == "succeeded" and run["params"]["framework"] == framework
    assert owners == {"numpy": "w-numpy-keras", "keras": "w-numpy-keras", "torch": "w-torch"}
    reference = curves["numpy"]
    assert reference[-1] < 1e-3 * reference[0]  # momentum crossed the ravine
    for framework in ("keras", "torch"):
        difference = np.max(np.abs(curves[framework] - reference)) / reference[0]
        assert difference < AGREEMENT, (framework, difference)


def _logs(directory: Path) -> str:
    return "\n".join(path.read_text(errors="replace")[-3000:] for path in directory.glob("*.log"))


def test_a_framework_grid_with_an_impossible_combination_is_refused(server: str) -> None:
    body = {
        "name": "bad",
        "base": {**BASE, "optimizer": "sgd_momentum"},
        "grid": {"framework": ["numpy", "keras", "torch"]},
    }
    with httpx.Client(base_url=f"{server}/api/v1", timeout=30) as api:
        response = api.post("/sweeps", json=body)
        assert response.status_code == 422, response.text
        assert "framework 'keras'" in response.text and "sgd_momentum" in response.text
        assert api.get("/jobs").json()["total"] == 0  # nothing was queued
