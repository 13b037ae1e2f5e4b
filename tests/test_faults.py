"""Faults survived, with real processes: the service killed mid-job, PostgreSQL restarted
mid-ingest. (A worker killed mid-job: tests/test_worker_e2e.py.)"""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import httpx
import pytest

from service.migrate import upgrade
from service.settings import Settings
from tests.support import ServerProcess, postgres_cluster, wait_until
from tests.test_worker_e2e import (
    SLOW,
    Workers,
    assert_every_step_once,
    get_job,
    submit,
    wait_mid_job,
)

# Where the worker, training on against the dead service, is held again until it is back.
HELD_AGAIN_AT = 150

pytestmark = pytest.mark.e2e


def test_service_killed_mid_job_loses_nothing_and_the_job_completes(
    sqlite_template: Path, tmp_path: Path
) -> None:
    database = tmp_path / "momentum.sqlite3"
    shutil.copyfile(sqlite_template, database)
    # A lease longer than the outage: the worker carries on, its reporter retrying.
    env = {"MOMENTUM_DATABASE_URL": f"sqlite:///{database}", "MOMENTUM_LEASE_SECONDS": "60"}
    with ServerProcess(env) as server:
        url = server.start()
        workers = Workers(url, tmp_path)
        try:
            workers.hold()
            workers.start("w1")
            with httpx.Client(base_url=f"{url}/api/v1", timeout=30) as api:
                job = submit(api, **SLOW)
                wait_mid_job(api, job["id"])
                server.kill()
                workers.hold(from_step=HELD_AGAIN_AT)  # it trains on against a dead port
                time.sleep(1.0)
                server.start()
                wait_mid_job(api, job["id"], step=HELD_AGAIN_AT)
                workers.release()
                wait_until(lambda: _status(api, job["id"]) == "succeeded", timeout=180)
                done = get_job(api, job["id"])
                assert_every_step_once(api, done, SLOW["steps"], SLOW["eval_every"])
                assert done["attempts"] == 1
        finally:
            workers.stop_all()


def _status(api: httpx.Client, job_id: int) -> str:
    return str(api.get(f"/jobs/{job_id}").json()["status"])


class _Ingester(threading.Thread):
    """Sends 50-point batches, one after another, recording which were acknowledged."""

    def __init__(self, url: str, run_id: int) -> None:
        super().__init__(daemon=True)
        self.url, self.run_id = url, run_id
        self.outcomes: list[tuple[int, int]] = []  # (first step, status; 0: no answer)
        self.halt = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as http:
            first = 0
            while not self.halt.is_set():
                points = [
                    {"key": "loss", "step": s, "value": 1.0} for s in range(first, first + 50)
                ]
                try:
                    status = http.post(
                        f"/api/v1/runs/{self.run_id}/metrics", json={"points": points}
                    ).status_code
                except httpx.TransportError:
                    status = 0
                self.outcomes.append((first, status))
                first += 50
                time.sleep(0.01)

    def acknowledged_steps(self) -> list[int]:
        return [
            s for first, status in self.outcomes if status == 200 for s in range(first, first + 50)
        ]


def test_postgres_restart_mid_ingest_heals_without_lasting_errors() -> None:
    with postgres_cluster() as cluster:
        database_url = f"{cluster.url}/postgres"
        upgrade(Settings(database_url=database_url))
        with ServerProcess({"MOMENTUM_DATABASE_URL": database_url}) as server:
            url = server.start()
            run_id = httpx.post(f"{url}/api/v1/runs", json={"name": "pg-restart"}).json()["id"]
            ingester = _Ingester(url, run_id)
            ingester.start()
            wait_until(lambda: len(ingester.outcomes) >= 20, timeout=30)
            cluster.restart()
            restarted_at = len(ingester.outcomes)
            wait_until(lambda: len(ingester.outcomes) >= restarted_at + 60, timeout=60)
            ingester.halt.set()
            ingester.join(timeout=30)

            statuses = [status for _, status in ingester.outcomes]
            assert 503 in statuses  # the outage was seen, and answered "retry", never 500
            assert set(statuses) <= {200, 503}, statuses
            assert statuses[-40:] == [200] * 40  # healed by itself, no lasting errors
            history = httpx.get(f"{url}/api/v1/runs/{run_id}/metrics/loss").json()
            assert set(ingester.acknowledged_steps()) <= set(history["steps"])
            assert httpx.get(f"{url}/readyz").status_code == 200
