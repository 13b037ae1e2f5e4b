"""Workers as real processes against a real service: sweeps, SIGKILL, cancel, SIGTERM, `up`.

The server runs with a 2 s lease so a killed worker's job comes back quickly. Every
process is stopped in a fixture finaliser; worker logs go to files under tmp_path. A test
that acts on a job mid-way holds it there with the workers' hold file (docs/jobs.md), not
by hoping the machine trains slowly.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import live_server, wait_until

pytestmark = pytest.mark.e2e

QUICK = {"dataset": "blobs", "model": "logreg", "steps": 200, "eval_every": 50}
# A torch job long enough to retry part-way; tests hold it mid-way with `Workers.hold`.
SLOW = {"dataset": "spirals", "model": "mlp", "steps": 300, "eval_every": 100}
COMMON = {"log_every": 1, "device": "cpu", "stop_on_divergence": False}


class Workers:
    """`momentum worker` subprocesses by id, with their logs in files. Each polls the
    service at `url`, or the one `start` names (a replica of several), and pauses its job
    while `hold` is in force."""

    def __init__(self, url: str, directory: Path) -> None:
        self.url, self.directory = url, directory
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.hold_file = directory / "hold"

    def start(
        self,
        worker_id: str,
        url: str | None = None,
        frameworks: str | None = None,
        extra: list[str] | None = None,
    ) -> subprocess.Popen[bytes]:
        argv = [sys.executable, "-m", "momentum.cli", "worker", "--url", url or self.url]
        argv += ["--worker-id", worker_id, "--device", "cpu", "--threads", "1", "--no-progress"]
        argv += ["--frameworks", frameworks] if frameworks else []
        argv += extra or []
        env = {**os.environ, "MOMENTUM_SPOOL_DIR": str(self.directory / f"spool-{worker_id}")}
        env["MOMENTUM_HOLD_FILE"] = str(self.hold_file)
        env.pop("MOMENTUM_TOKEN", None)
        with self.log_path(worker_id).open("wb") as log:
            process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.processes[worker_id] = process
        return process

    def hold(self, from_step: int | None = None) -> None:
        """Every worker pauses its job after each logged step, from `from_step` (steps
        done) or at once, until `release`. Replaced whole, so no worker reads half of it."""
        partial = self.hold_file.with_suffix(".partial")
        partial.write_text("" if from_step is None else str(from_step))
        partial.replace(self.hold_file)

    def release(self) -> None:
        self.hold_file.unlink(missing_ok=True)

    def log_path(self, worker_id: str) -> Path:
        return self.directory / f"{worker_id}.log"

    def log(self, worker_id: str) -> str:
        return self.log_path(worker_id).read_text(errors="replace")

    def all_logs(self) -> str:
        return "".join(self.log(worker_id) for worker_id in self.processes)

    def log_tails(self) -> str:
        """The end of each worker's log, for a failure message."""
        return "\n".join(f"--- {name}\n{self.log(name)[-2000:]}" for name in self.processes)

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def sqlite_server(template: Path, directory: Path, **env: str) -> Iterator[str]:
    """A real service on a copy of the migrated `template`, short leases and a quick
    reaper (so a killed worker's job comes back soon), and `env` on top."""
    database = directory / "momentum.sqlite3"
    shutil.copyfile(template, database)
    settings = {
        "MOMENTUM_DATABASE_URL": f"sqlite:///{database}",
        "MOMENTUM_LEASE_SECONDS": "2",
        "MOMENTUM_REAPER_INTERVAL_S": "0.3",
        **env,
    }
    with live_server(settings) as url:
        yield url


@pytest.fixture
def server(sqlite_template: Path, tmp_path: Path) -> Iterator[str]:
    with sqlite_server(sqlite_template, tmp_path) as url:
        yield url


@pytest.fixture
def api(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{server}/api/v1", timeout=30) as client:
        yield client


@pytest.fixture
def workers(server: str, tmp_path: Path) -> Iterator[Workers]:
    started = Workers(server, tmp_path)
    try:
        yield started
    finally:
        started.stop_all()


def submit(api: httpx.Client, **config: Any) -> dict[str, Any]:
    response = api.post("/jobs", json={"config": {**COMMON, **config}})
    assert response.status_code == 201, response.text
    return response.json()


def get_job(api: httpx.Client, job_id: int) -> dict[str, Any]:
    return api.get(f"/jobs/{job_id}").json()


def steps_of(api: httpx.Client, run_id: int, key: str) -> list[int]:
    return list(api.get(f"/runs/{run_id}/metrics/{key}").json()["steps"])


def wait_for_status(api: httpx.Client, job_id: int, status: str, timeout: float) -> dict[str, Any]:
    wait_until(lambda: get_job(api, job_id)["status"] == status, timeout)
    return get_job(api, job_id)


def wait_mid_job(api: httpx.Client, job_id: int, step: int = 1) -> dict[str, Any]:
    """Wait until the worker's heartbeat says it is held after `step` steps (`Workers.hold`
    from that step, with `log_every=1`); the job then."""
    wait_until(lambda: (get_job(api, job_id)["progress_step"] or 0) >= step, timeout=45)
    job = get_job(api, job_id)
    assert (job["status"], job["progress_step"]) == ("running", step), "held there"
    return job


def assert_every_step_once(
    api: httpx.Client, job: dict[str, Any], steps: int, every: int, stopped_at: int | None = None
) -> None:
    """Each step's points exactly once. An attempt stopped early also evaluated its last
    step (`stopped_at`); deterministic training makes that value the retry's too."""
    assert steps_of(api, job["run_id"], "loss") == list(range(steps))
    evals = {s for s in range(steps) if s % every == 0 or s == steps - 1}
    if stopped_at is not None:
        evals.add(stopped_at)
    assert steps_of(api, job["run_id"], "val_loss") == sorted(evals)


def test_two_workers_complete_a_sweep(api: httpx.Client, workers: Workers) -> None:
    body = {
        "name": "e2e",
        "base": {**COMMON, **QUICK},
        "grid": {"momentum": [0, 0.9], "seed": [0, 1]},
    }
    sweep = api.post("/sweeps", json=body).json()
    workers.start("w-a")
    workers.start("w-b")
    wait_until(lambda: api.get(f"/sweeps/{sweep['id']}").json()["status"] == "succeeded", 90)
    for job_id in sweep["job_ids"]:
        job = get_job(api, job_id)
        assert job["attempts"] == 1 and job["summary"]["steps_done"] == QUICK["steps"]
        # N/N, even for a job done before its first heartbeat reported any progress.
        assert (job["progress_step"], job["progress_total"]) == (QUICK["steps"], QUICK["steps"])
        assert_every_step_once(api, job, QUICK["steps"], QUICK["eval_every"])
        assert api.get(f"/runs/{job['run_id']}").json()["status"] == "succeeded"
    seen = {w["id"]: w for w in api.get("/workers").json()["items"]}
    assert set(seen) == {"w-a", "w-b"}
    assert all(w["current_job_id"] is None for w in seen.values())


def test_a_killed_workers_job_is_requeued_and_finished_by_the_other(
    api: httpx.Client, workers: Workers
) -> None:
    workers.hold()
    created = submit(api, **SLOW)
    workers.start("w-a")
    workers.start("w-b")
    owner = wait_mid_job(api, created["id"])["lease_owner"]
    workers.processes[owner].kill()
    workers.processes[owner].wait()
    workers.release()
    done = wait_for_status(api, created["id"], "succeeded", timeout=60)
    other = "w-b" if owner == "w-a" else "w-a"
    assert (done["lease_owner"], done["attempts"], done["lease_lapses"]) == (other, 2, 1)
    # The retry restarted at step 0 and upserted: each step's points exactly once.
    assert_every_step_once(api, done, SLOW["steps"], SLOW["eval_every"])


def test_a_cancelled_job_stops_within_seconds(api: httpx.Client, workers: Workers) -> None:
    workers.hold()  # never released: only the cancel ends the job
    created = submit(api, **SLOW)
    process = workers.start("w-a")
    wait_mid_job(api, created["id"])
    asked = time.monotonic()
    assert api.post(f"/jobs/{created['id']}/cancel").json()["cancel_requested"] is True
    job = wait_for_status(api, created["id"], "cancelled", timeout=10)
    assert time.monotonic() - asked < 5
    run = api.get(f"/runs/{job['run_id']}").json()
    assert run["status"] == "cancelled" and run["last_step"] < SLOW["steps"] - 1
    assert process.poll() is None, "the worker goes on to the next job"
    assert "job 1: cancelled" in workers.log("w-a")


def test_sigterm_hands_the_job_back_and_exits_0(api: httpx.Client, workers: Workers) -> None:
    workers.hold()
    created = submit(api, **SLOW)
    workers.start("w-a")
    workers.start("w-b")
    owner = wait_mid_job(api, created["id"])["lease_owner"]
    workers.processes[owner].send_signal(signal.SIGTERM)
    assert workers.processes[owner].wait(timeout=30) == 0
    workers.release()
    log = workers.log(owner)
    assert "handed back to the queue" in log
    stopped_at = int(log.split("handed back to the queue (")[1].split("/")[0]) - 1
    done = wait_for_status(api, created["id"], "succeeded", timeout=60)
    # Handed back, not lapsed: no lapse counted, and the hand-back cost no attempt.
    assert (done["attempts"], done["lease_lapses"], done["max_attempts"]) == (2, 0, 4)
    assert done["lease_owner"] != owner
    assert_every_step_once(api, done, SLOW["steps"], SLOW["eval_every"], stopped_at)
