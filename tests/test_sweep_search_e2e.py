"""Adaptive sweeps through the real service and real workers: a random sweep with ASHA
and a TPE sweep run together on two replicas of one SQLite file, and one replica is
SIGKILLed mid-sweep and started again. Exactly `max_jobs` trials each, never more than
`parallelism` jobs queued or running, stopped runs with reasons whose numbers are the
stored curves', each rung decided once, and the best run not stopped."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from service.analysis.summary import tail_mean
from tests.support import ServerProcess, wait_until
from tests.test_worker_e2e import Workers

pytestmark = pytest.mark.e2e

BASE = {"dataset": "blobs", "model": "logreg", "steps": 30, "eval_every": 30, "device": "cpu"}
SPACE = {
    "momentum": {"type": "float", "low": 0.0, "high": 0.99},
    "lr": {"type": "float", "low": 1e-3, "high": 1.0, "log": True},
}
ASHA = {"rule": "asha", "min_step": 3, "reduction_factor": 3}  # rungs 3, 9, 27
REASON = re.compile(
    r"stopped at step (\d+): loss (\S+) is not in the top 1/3 at rung \1 "
    r"\(cutoff (\S+), (\d+) runs reached it\)"
)


def _curve(api: httpx.Client, run_id: int) -> tuple[np.ndarray, np.ndarray]:
    body = api.get(f"/runs/{run_id}/metrics/loss").json()
    return np.array(body["steps"]), np.array(body["values"], dtype=float)


def _rung_value(api: httpx.Client, run_id: int, rung: int) -> str:
    steps, values = _curve(api, run_id)
    upto = steps <= rung
    return f"{tail_mean(steps[upto], values[upto]):.4g}"


def _most_at_once(jobs: list[dict[str, Any]]) -> int:
    """The most jobs queued or running at one moment, from their creation and end times
    (a job created as another ends is created after that end, in the same transaction)."""
    moments = sorted(
        [(job["created_at"], 1) for job in jobs] + [(job["ended_at"], -1) for job in jobs],
        key=lambda moment: (moment[0], moment[1]),
    )
    most = current = 0
    for _, change in moments:
        current += change
        most = max(most, current)
    return most


def _check_stops(api: httpx.Client, sweep: dict[str, Any], jobs: list[dict[str, Any]]) -> None:
    stopped = [job for job in jobs if job["early_stopped"] is not None]
    assert stopped, "ASHA stopped no run"
    for job in stopped:
        verdict = job["early_stopped"]
        found = REASON.fullmatch(verdict["reason"])
        assert found and verdict["rule"] == "asha", verdict
        rung = int(found.group(1))
        assert verdict["step"] == rung and job["status"] == "succeeded"
        assert found.group(2) == _rung_value(api, job["run_id"], rung)
        others = {_rung_value(api, o["run_id"], rung) for o in jobs if o["id"] != job["id"]}
        assert found.group(3) in others | {found.group(2)}
        assert _curve(api, job["run_id"])[0][-1] < BASE["steps"] - 1  # fewer points logged
        run = api.get(f"/runs/{job['run_id']}").json()
        assert run["tags"]["momentum.early_stopped"] == verdict["reason"]
    # Each rung decided once per run that reached it, and its stops are the runs' verdicts.
    for rung in sweep["rungs"]:
        reached = [j for j in jobs if _curve(api, j["run_id"])[0][-1] >= rung["step"]]
        assert rung["reached"] == len(reached)
        assert rung["stopped"] == sum(
            1 for j in stopped if j["early_stopped"]["step"] == rung["step"]
        )
    best = sweep["best"]
    assert best is not None
    best_job = next(job for job in jobs if job["id"] == best["job_id"])
    assert best_job["early_stopped"] is None
    steps, values = _curve(api, best_job["run_id"])
    assert best["objective"] == pytest.approx(tail_mean(steps, values))


@pytest.mark.timeout(900)  # a slow, shared machine: what it waits for is events, not time
def test_random_with_asha_and_tpe_survive_a_sigkilled_replica(
    sqlite_template: Path, tmp_path: Path
) -> None:
    database = tmp_path / "momentum.sqlite3"
    shutil.copyfile(sqlite_template, database)
    env = {
        "MOMENTUM_DATABASE_URL": f"sqlite:///{database}",
        # Longer than the slowest restart seen on a loaded machine (~100 s): the test is
        # about a killed replica, not about leases lapsing and jobs starting over.
        "MOMENTUM_LEASE_SECONDS": "120",
        "MOMENTUM_REAPER_INTERVAL_S": "1",
    }
    first, second = ServerProcess(env, timeout=120), ServerProcess(env, timeout=120)
    workers = Workers(first.url, tmp_path)
    try:
        first.start()
        second.start()
        with httpx.Client(base_url=f"{first.url}/api/v1", timeout=30) as api:
            common = {"base": BASE, "space": SPACE}
            random_body = {"name": "random", "strategy": "random", "max_jobs": 9, "parallelism": 3}
            random_sweep = api.post(
                "/sweeps", json={**common, **random_body, "early_stop": ASHA, "search_seed": 4}
            ).json()
            tpe_body = {"name": "tpe", "strategy": "tpe", "max_jobs": 4, "parallelism": 2}
            tpe_sweep = api.post("/sweeps", json={**common, **tpe_body}).json()
            assert (random_sweep["trials"], tpe_sweep["trials"]) == (3, 2)
            workers.start("w-a", url=first.url)
            workers.start("w-b", url=second.url)
            trials = lambda: api.get(f"/sweeps/{random_sweep['id']}").json()["trials"]  # noqa: E731
            wait_until(lambda: trials() >= 6, timeout=300)
        first.kill()  # mid-sweep: requests in flight are cut
        first.start()
        with httpx.Client(base_url=f"{first.url}/api/v1", timeout=30) as api:
            for sweep in (random_sweep, tpe_sweep):
                done = lambda s=sweep: api.get(f"/sweeps/{s['id']}").json()["status"] == "succeeded"  # noqa: E731
                wait_until(done, timeout=400)
            for sweep, parallelism in ((random_sweep, 3), (tpe_sweep, 2)):
                final = api.get(f"/sweeps/{sweep['id']}").json()
                jobs = api.get("/jobs", params={"sweep_id": sweep["id"], "limit": 100}).json()[
                    "items"
                ]
                assert final["trials"] == len(jobs) == final["max_jobs"]
                assert _most_at_once(jobs) <= parallelism
                assert final["steps_spent"] == sum(
                    _curve(api, j["run_id"])[0][-1] + 1 for j in jobs
                )
            _check_stops(
                api,
                api.get(f"/sweeps/{random_sweep['id']}").json(),
                api.get("/jobs", params={"sweep_id": random_sweep["id"], "limit": 100}).json()[
                    "items"
                ],
            )
    except BaseException:
        print(workers.log_tails())
        raise
    finally:
        workers.stop_all()
        first.stop()
        second.stop()
