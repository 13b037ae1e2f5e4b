"""The SDK's own flows under the worker token's rights (SECURITY.md), against a real
`momentum serve`: a run's points land before it is closed, a spool left by an outage
replays with `momentum sync`, and a retried job's worker writes its run again."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from momentum.client import MomentumClient, ReporterOptions, Run
from momentum.worker import Worker, WorkerOptions
from tests.support import ServerProcess, wait_until
from tests.test_worker import QuietDisplay

pytestmark = pytest.mark.e2e

FULL_TOKEN, WORKER_TOKEN = "full-secret", "worker-secret"
# A flush interval longer than the test: nothing is sent before `finish` flushes.
HELD = ReporterOptions(flush_interval=60.0, max_queue=100_000, backoff_base=0.01, backoff_max=0.2)
QUICK = ReporterOptions(flush_interval=0.05, backoff_base=0.01, backoff_max=0.2)
STEPS = 40
JOB = {
    "dataset": "blobs",
    "model": "logreg",
    "steps": STEPS,
    "eval_every": 20,
    "log_every": 1,
    "device": "cpu",
}


@pytest.fixture
def server(database_url: str) -> Iterator[ServerProcess]:
    env = {
        "MOMENTUM_DATABASE_URL": database_url,
        "MOMENTUM_TOKEN": FULL_TOKEN,
        "MOMENTUM_WORKER_TOKEN": WORKER_TOKEN,
        "MOMENTUM_LEASE_SECONDS": "3",
        "MOMENTUM_REAPER_INTERVAL_S": "0.3",
    }
    with ServerProcess(env) as process:
        process.start()
        yield process


@pytest.fixture
def full(server: ServerProcess) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {FULL_TOKEN}"}
    with httpx.Client(base_url=f"{server.url}/api/v1", headers=headers, timeout=30) as client:
        yield client


@pytest.fixture
def worker_api(server: ServerProcess) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {WORKER_TOKEN}"}
    with httpx.Client(base_url=f"{server.url}/api/v1", headers=headers, timeout=30) as client:
        yield client


def steps_of(full: httpx.Client, run_id: int, key: str = "loss") -> list[int]:
    return list(full.get(f"/runs/{run_id}/metrics/{key}").json()["steps"])


def test_finish_sends_every_point_before_the_closing_status(
    server: ServerProcess, full: httpx.Client, tmp_path: Path
) -> None:
    run = Run(
        "closing", {"lr": 0.1}, url=server.url, token=WORKER_TOKEN, spool_dir=tmp_path, options=HELD
    )
    with run:
        for step in range(5_000):
            run.log(step, loss=1.0 / (step + 1))
    # Had the closing PATCH gone first, the points after it would have been refused.
    assert run.unsent_path is None and run.id is not None
    stored = full.get(f"/runs/{run.id}").json()
    assert (stored["status"], stored["last_step"]) == ("succeeded", 4_999)
    assert steps_of(full, run.id) == list(range(5_000))


def test_a_spool_left_by_an_outage_replays_with_the_worker_token(
    server: ServerProcess, full: httpx.Client, tmp_path: Path
) -> None:
    run = Run("outage", url=server.url, token=WORKER_TOKEN, spool_dir=tmp_path, options=QUICK)
    run.start()
    assert run.wait_for_id(30) is not None
    for step in range(100):
        run.log(step, loss=float(step))
    assert run.reporter is not None
    stats = run.reporter.stats
    wait_until(lambda: stats.points_sent == 100, timeout=30)
    server.stop()
    for step in range(100, 200):
        run.log(step, loss=float(step))
    spool = run.finish(timeout=0.5)  # the service is down: points and close are spooled
    assert spool is not None and spool.exists()
    server.start()
    assert full.get(f"/runs/{run.id}").json()["status"] == "running"
    replayed = _sync(server, spool, WORKER_TOKEN)
    assert replayed.returncode == 0, replayed.stderr
    assert "100 points, 1 updates replayed" in replayed.stdout
    assert steps_of(full, run.id) == list(range(200))
    assert full.get(f"/runs/{run.id}").json()["status"] == "succeeded"
    assert not spool.exists()


def test_a_spool_for_a_run_closed_meanwhile_says_which_token_can_replay_it(
    server: ServerProcess, full: httpx.Client, tmp_path: Path
) -> None:
    run = Run("closed", url=server.url, token=WORKER_TOKEN, spool_dir=tmp_path, options=QUICK)
    run.start()
    assert run.wait_for_id(30) is not None
    server.stop()
    run.log(0, loss=1.0)
    spool = run.finish(timeout=0.5)
    assert spool is not None
    server.start()
    assert full.patch(f"/runs/{run.id}", json={"status": "failed"}).status_code == 200
    refused = _sync(server, spool, WORKER_TOKEN)
    assert refused.returncode != 0 and spool.exists()
    assert f"run {run.id} is failed" in refused.stderr and "MOMENTUM_TOKEN" in refused.stderr
    assert _sync(server, spool, FULL_TOKEN).returncode == 0
    assert steps_of(full, run.id) == [0]


def _sync(server: ServerProcess, spool: Path, token: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "momentum.cli", "sync", str(spool), "--url", server.url]
    return subprocess.run(
        [*argv, "--token", token], capture_output=True, text=True, timeout=120, check=False
    )


def _claim_by_hand(worker_api: httpx.Client) -> dict[str, Any]:
    body = {"worker_id": "by-hand", "device": "cpu", "frameworks": ["torch"]}
    claimed = worker_api.post("/jobs/claim", json=body)
    assert claimed.status_code == 200, claimed.text
    return dict(claimed.json())


def _log_by_hand(worker_api: httpx.Client, run_id: int, steps: range) -> httpx.Response:
    batch = [{"key": "loss", "step": step, "value": 9.0} for step in steps]
    return worker_api.post(f"/runs/{run_id}/metrics", json={"points": batch})


def test_a_retried_jobs_worker_writes_its_run_again(
    server: ServerProcess, full: httpx.Client, worker_api: httpx.Client, tmp_path: Path
) -> None:
    """Attempt 1 fails, the job is retried; attempt 2's lease lapses and the job goes back
    to the queue; attempt 3, a real worker with the worker token, trains it from step 0."""
    job = full.post("/jobs", json={"config": JOB}).json()
    run_id = job["run_id"]
    first = _claim_by_hand(worker_api)
    assert _log_by_hand(worker_api, run_id, range(10)).status_code == 200
    fail = {"lease_token": first["lease_token"], "error": "out of memory"}
    assert worker_api.post(f"/jobs/{job['id']}/fail", json=fail).status_code == 200
    assert _log_by_hand(worker_api, run_id, range(10, 20)).status_code == 403  # job failed
    assert full.post(f"/jobs/{job['id']}/retry").status_code == 200
    _claim_by_hand(worker_api)  # attempt 2, never heartbeated
    wait_until(lambda: full.get(f"/jobs/{job['id']}").json()["status"] == "queued", timeout=30)
    assert _log_by_hand(worker_api, run_id, range(10, 20)).status_code == 403  # job queued

    with MomentumClient(server.url, WORKER_TOKEN) as client:
        options = WorkerOptions(worker_id="w3", device="cpu", once=True, spool_dir=tmp_path)
        Worker(client, options, QuietDisplay()).serve()

    done = full.get(f"/jobs/{job['id']}").json()
    assert (done["status"], done["attempts"]) == ("succeeded", 3), done
    run = full.get(f"/runs/{run_id}").json()
    assert (run["status"], run["last_step"]) == ("succeeded", STEPS - 1)
    loss = full.get(f"/runs/{run_id}/metrics/loss").json()
    assert loss["steps"] == list(range(STEPS))
    assert 9.0 not in loss["values"], "attempt 1's points were not all rewritten by attempt 3"
    assert _log_by_hand(worker_api, run_id, range(1)).status_code == 403  # job succeeded
