"""A sweep's trials played through the public worker protocol, as a worker plays them,
with curves the test chooses: claim, log the points up to each rung the claim names,
heartbeat there (where the service judges the rung), and complete. Which trial loses is
the test's choice, not the machine's speed, so what the service decides is known ahead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

NO_JOB = 204


@dataclass(frozen=True)
class Played:
    job_id: int
    run_id: int
    stopped: bool
    last_step: int  # the last step logged


def curve(rate: float, step: int) -> float:
    """A loss falling at `rate`: a higher rate is a better trial at every step."""
    return 2.0 / (1.0 + rate * step)


def play_next(api: httpx.Client, rate: float, worker_id: str = "played") -> Played | None:
    """Claim the next queued job and train it on `curve(rate, ·)`; None if none is queued.
    `api` has the service's /api/v1 as its base URL."""
    claim = api.post("/jobs/claim", json={"worker_id": worker_id, "device": "cpu"})
    if claim.status_code == NO_JOB:
        return None
    assert claim.status_code == 200, claim.text
    claimed = claim.json()
    job, token = claimed["job"], claimed["lease_token"]
    total = job["config"]["steps"]
    rungs = claimed.get("check_steps") or rungs_of(api, job["sweep_id"], total)
    logged = 0
    for rung in rungs:
        _log(api, job["run_id"], rate, range(logged, rung + 1))
        logged = rung + 1
        reply = _heartbeat(api, job["id"], token, logged, total)
        if reply["stop"]:
            _complete(api, job["id"], token, logged)
            return Played(job["id"], job["run_id"], True, rung)
    _log(api, job["run_id"], rate, range(logged, total))
    _complete(api, job["id"], token, total)
    return Played(job["id"], job["run_id"], False, total - 1)


def rungs_of(api: httpx.Client, sweep_id: int, total: int) -> list[int]:
    """The rungs below `total` of the sweep's early_stop: min_step · reduction_factor^k."""
    rule = api.get(f"/sweeps/{sweep_id}").json()["early_stop"]
    rungs, step = [], rule["min_step"]
    while step < total:
        rungs.append(step)
        step *= rule["reduction_factor"]
    return rungs


def _log(api: httpx.Client, run_id: int, rate: float, steps: range) -> None:
    points = [{"key": "loss", "step": step, "value": curve(rate, step)} for step in steps]
    if points:
        response = api.post(f"/runs/{run_id}/metrics", json={"points": points})
        assert response.status_code == 200, response.text


def _heartbeat(api: httpx.Client, job_id: int, token: str, step: int, total: int) -> Any:
    body = {"lease_token": token, "step": step, "total": total}
    response = api.post(f"/jobs/{job_id}/heartbeat", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def _complete(api: httpx.Client, job_id: int, token: str, steps_done: int) -> None:
    body = {"lease_token": token, "summary": {"steps_done": steps_done}}
    response = api.post(f"/jobs/{job_id}/complete", json=body)
    assert response.status_code == 200, response.text


def asha_sweep(name: str, *, max_jobs: int = 4, steps: int = 40) -> dict[str, Any]:
    """A random sweep of the built-in trainer with ASHA rungs at 10 and 20 (rf 2)."""
    return {
        "name": name,
        "base": {"dataset": "ravine", "model": "linear", "steps": steps},
        "strategy": "random",
        "space": {
            "momentum": {"type": "float", "low": 0.0, "high": 0.99},
            "lr": {"type": "float", "low": 1e-3, "high": 1.0, "log": True},
        },
        "max_jobs": max_jobs,
        "parallelism": max_jobs,
        "search_seed": 7,
        "objective": {"key": "loss", "mode": "min", "summary": "final"},
        "early_stop": {"rule": "asha", "min_step": 10, "reduction_factor": 2},
    }


def play_sweep(api: httpx.Client, sweep_id: int, rates: list[float]) -> list[Played]:
    """Play the sweep's trials in claim order, the i-th on `rates[i]`, until its budget
    is spent (trials the service creates as earlier ones end are claimed in turn)."""
    played: list[Played] = []
    for rate in rates:
        trial = play_next(api, rate)
        assert trial is not None, f"no queued job for trial {len(played) + 1}"
        played.append(trial)
    sweep = api.get(f"/sweeps/{sweep_id}").json()
    assert sweep["trials"] == len(rates), sweep
    return played
