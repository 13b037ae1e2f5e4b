"""Adaptive sweeps through the API (SQLite and PostgreSQL): requests refused at the
field with nothing written, trials topped up within budget and parallelism, refused
points costing no budget, rung decisions against the stored curves, cancel and delete."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from momentum.contract import Status
from service import Settings, create_app
from service.analysis.summary import tail_mean
from service.models import Job, Sweep, SweepRung, SweepTrial
from tests.factories import log_points
from tests.jobs_support import API, TINY, claim

SPACE = {
    "momentum": {"type": "float", "low": 0.0, "high": 0.99},
    "lr": {"type": "float", "low": 1e-3, "high": 0.5, "log": True},
}


def _search(**body: Any) -> dict[str, Any]:
    return {"name": "search", "base": TINY, "strategy": "random", "space": SPACE, **body}


def _create(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"{API}/sweeps", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _sweep(client: TestClient, sweep_id: int) -> dict[str, Any]:
    response = client.get(f"{API}/sweeps/{sweep_id}")
    assert response.status_code == 200, response.text
    return response.json()


REFUSED = [
    (
        _search(space={"momentum": {"type": "float", "low": 0.5, "high": 1.5}}, max_jobs=4),
        ["space", "momentum"],
    ),
    (
        _search(space={"momentum": {"type": "float", "low": 0.9, "high": 0.1}}, max_jobs=4),
        ["space", "momentum"],
    ),
    (
        _search(space={"lr": {"type": "float", "low": 0, "high": 1, "log": True}}, max_jobs=4),
        ["space", "lr"],
    ),
    (
        _search(space={"colour": {"type": "choice", "choices": ["red"]}}, max_jobs=4),
        ["space", "colour"],
    ),
    (
        _search(space={"optimizer": {"type": "choice", "choices": ["sgd", "lbfgs"]}}, max_jobs=4),
        ["space", "optimizer"],
    ),
    (
        _search(
            space={"seed": {"type": "int", "low": 0, "high": 9}}, grid={"seed": [0, 1]}, max_jobs=4
        ),
        ["space", "seed"],
    ),
    (_search(), ["max_jobs"]),
    (_search(max_jobs=0), ["max_jobs"]),
    (_search(max_jobs=257), ["max_jobs"]),
    (_search(max_jobs=5, grid={"seed": [0, 1]}), ["max_jobs"]),
    (_search(max_jobs=6, parallelism=2, grid={"seed": [0, 1, 2]}), ["parallelism"]),
    (_search(max_jobs=4, objective={"key": "perplexity"}), ["objective", "key"]),
    (_search(max_jobs=4, objective={"mode": "lowest"}), ["objective", "mode"]),
    (_search(max_jobs=4, objective={"summary": "median"}), ["objective", "summary"]),
    (_search(max_jobs=4, early_stop={"rule": "hyperband"}), ["early_stop", "rule"]),
    (
        _search(max_jobs=4, early_stop={"rule": "asha", "reduction_factor": 1}),
        ["early_stop", "reduction_factor"],
    ),
    (_search(max_jobs=4, early_stop={"rule": "asha", "key": "nope"}), ["early_stop", "key"]),
    (_search(max_jobs=4, strategy="bayes"), ["strategy"]),
    ({"name": "grid", "base": TINY, "grid": {"momentum": [0.1]}, "space": SPACE}, ["space"]),
]


def test_a_bad_space_budget_objective_or_early_stop_is_422_at_the_field_writing_nothing(
    client: TestClient,
) -> None:
    for body, loc in REFUSED:
        response = client.post(f"{API}/sweeps", json=body)
        assert response.status_code == 422, (loc, response.text)
        assert response.json()["error"]["detail"][0]["loc"] == loc, response.text
    assert client.get(f"{API}/sweeps").json()["total"] == 0
    assert client.get(f"{API}/jobs").json()["total"] == 0


def _finish(client: TestClient, claimed: dict[str, Any], loss: float, steps: int = 5) -> None:
    """Log a flat loss curve for the claimed job, then complete it."""
    run_id = claimed["job"]["run_id"]
    log_points(client, run_id, [{"key": "loss", "step": s, "value": loss} for s in range(steps)])
    token = claimed["lease_token"]
    response = client.post(
        f"{API}/jobs/{claimed['job']['id']}/complete", json={"lease_token": token}
    )
    assert response.status_code == 200, response.text


def _active(engine: Engine, sweep_id: int) -> int:
    with Session(engine) as session:
        active = [Status.queued.value, Status.running.value]
        statement = select(func.count()).where(Job.sweep_id == sweep_id, Job.status.in_(active))
        return int(session.scalar(statement) or 0)


def test_a_random_sweep_tops_up_within_parallelism_to_exactly_its_budget_across_restarts(
    settings: Settings, engine: Engine
) -> None:
    """Samples crossed with two seeds: 3 samples of 2 jobs, 2 at a time; the service is
    started anew halfway, as after a restart, and its claims continue the sweep."""
    body = _search(max_jobs=6, parallelism=2, grid={"seed": [0, 1]}, search_seed=11)
    losses: dict[int, float] = {}
    for jobs in (range(3), range(3, 6)):
        with TestClient(create_app(settings)) as client:
            if not losses:
                sweep = _create(client, body)
                assert sweep["trials"] == 2 and sweep["max_jobs"] == 6
            for index in jobs:
                claimed = claim(client)
                assert claimed is not None
                assert _active(engine, sweep["id"]) <= 2
                losses[claimed["job"]["id"]] = 1.0 + index
                _finish(client, claimed, 1.0 + index)
                assert _active(engine, sweep["id"]) <= 2
            final = _sweep(client, sweep["id"])
    with TestClient(create_app(settings)) as client:
        assert claim(client) is None  # the budget is spent
    assert final["trials"] == 6 and final["status"] == "succeeded"
    assert final["steps_spent"] == 6 * 5
    with Session(engine) as session:
        trials = session.scalars(select(SweepTrial).order_by(SweepTrial.number)).all()
        jobs = {job.id: job for job in session.scalars(select(Job))}
    assert [trial.state for trial in trials] == ["complete"] * 3
    for trial in trials:  # each sample: its two seeds, and the mean of their objectives
        assert sorted(jobs[i].config["seed"] for i in trial.job_ids) == [0, 1]
        for i in trial.job_ids:
            assert jobs[i].config["momentum"] == trial.params["momentum"]
        assert trial.value == pytest.approx(np.mean([losses[i] for i in trial.job_ids]))
    best = min(trials, key=lambda trial: trial.value or 0)
    assert final["best"]["objective"] == pytest.approx(best.value)
    assert final["best"]["params"] == best.params and final["best"]["job_id"] == best.job_ids[0]


def test_the_same_search_seed_samples_the_same_points(client: TestClient) -> None:
    first = _create(client, _search(max_jobs=4, search_seed=3))
    second = _create(client, _search(max_jobs=4, search_seed=3))
    params = [
        [client.get(f"{API}/jobs/{i}").json()["config"]["lr"] for i in sweep["job_ids"]]
        for sweep in (first, second)
    ]
    assert params[0] == params[1] and len(set(params[0])) == 4


def test_a_point_that_fails_validation_is_told_back_and_costs_no_budget(
    client: TestClient, engine: Engine
) -> None:
    """A cnn on the ravine is no valid combination: such points become failed trials
    without jobs, and the budget is still spent on valid ones."""
    space = {"model": {"type": "choice", "choices": ["linear", "cnn"]}, **SPACE}
    base = {name: value for name, value in TINY.items() if name != "model"}
    body = _search(space=space, base=base, max_jobs=4, parallelism=4, search_seed=1)
    sweep = _create(client, body)
    assert sweep["trials"] == 4
    with Session(engine) as session:
        trials = session.scalars(select(SweepTrial)).all()
        models = {job.config["model"] for job in session.scalars(select(Job))}
    refused = [trial for trial in trials if trial.state == "failed"]
    assert models == {"linear"} and refused
    assert all(not trial.job_ids and "cnn" in (trial.error or "") for trial in refused)
    assert [trial.params["model"] for trial in refused] == ["cnn"] * len(refused)


def _heartbeat(client: TestClient, claimed: dict[str, Any]) -> dict[str, Any]:
    response = client.post(
        f"{API}/jobs/{claimed['job']['id']}/heartbeat",
        json={"lease_token": claimed["lease_token"], "step": 4},
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_asha_decides_each_rung_once_on_the_stored_curves(
    client: TestClient, engine: Engine
) -> None:
    """A grid sweep with ASHA (rung at step 4, keep the top 1/2): each run is judged on
    its tail mean up to the rung, against the runs that reached it before."""
    early_stop = {"rule": "asha", "key": "loss", "min_step": 4, "reduction_factor": 2}
    body = {"name": "g", "base": {**TINY, "steps": 20}, "grid": {"momentum": [0.1, 0.2, 0.3, 0.4]}}
    sweep = _create(client, {**body, "early_stop": early_stop})
    claims = [claim(client, worker_id=f"w{i}") for i in range(4)]
    curves = {}
    replies: list[bool] = []
    for index, scale in enumerate([1.0, 2.0, 0.5, 1.5]):
        claimed = claims[index]
        assert claimed is not None and claimed["check_steps"] == [4, 8, 16]
        values = scale * (1 + np.arange(8) / 10)  # past the rung too: never judged on
        curves[claimed["job"]["id"]] = values
        log_points(
            client,
            claimed["job"]["run_id"],
            [{"key": "loss", "step": s, "value": float(v)} for s, v in enumerate(values)],
        )
        replies.append(_heartbeat(client, claimed)["stop"])
        assert _heartbeat(client, claimed)["stop"] == replies[-1]  # nothing decided again
    with Session(engine) as session:
        decided = session.scalars(select(SweepRung).order_by(SweepRung.decided_at)).all()
    assert [(row.step, row.stopped, row.reached) for row in decided] == [
        (4, False, 1),
        (4, True, 2),
        (4, False, 3),
        (4, True, 4),
    ]
    for row in decided:  # the tail mean of steps 0..4 (the last 10 %: step 4 alone)
        expected = tail_mean(np.arange(5), curves[row.job_id][:5])
        assert row.value == pytest.approx(expected)
    assert decided[1].cutoff == pytest.approx(decided[0].value)
    assert decided[3].cutoff == pytest.approx(decided[0].value)  # 2nd best of 4
    assert replies == [False, True, False, True]
    for row in decided[1::2]:  # the reason's numbers are the stored curves'
        stopped = client.get(f"{API}/jobs/{row.job_id}").json()["early_stopped"]
        assert stopped == {
            "step": 4,
            "rule": "asha",
            "reason": (
                f"stopped at step 4: loss {row.value:.4g} is not in the top 1/2 at rung 4 "
                f"(cutoff {row.cutoff:.4g}, {row.reached} runs reached it)"
            ),
        }
    rungs = _sweep(client, sweep["id"])["rungs"]
    assert rungs == [
        {"step": 4, "cutoff": pytest.approx(decided[3].cutoff), "reached": 4, "stopped": 2}
    ]


def test_a_cancelled_search_creates_no_more_trials_and_deletes_with_its_state(
    client: TestClient, engine: Engine
) -> None:
    sweep = _create(
        client, _search(max_jobs=6, parallelism=2, early_stop={"rule": "median", "min_step": 2})
    )
    claimed = claim(client)
    assert claimed is not None
    log_points(
        client,
        claimed["job"]["run_id"],
        [{"key": "loss", "step": s, "value": 1.0} for s in range(3)],
    )
    _heartbeat(client, claimed)
    assert client.post(f"{API}/sweeps/{sweep['id']}/cancel").status_code == 200
    token = claimed["lease_token"]
    failed = client.post(
        f"{API}/jobs/{claimed['job']['id']}/fail",
        json={"lease_token": token, "error": "x", "cancelled": True},
    )
    assert failed.status_code == 200, failed.text
    assert claim(client) is None
    after = _sweep(client, sweep["id"])
    assert after["trials"] == 2 and after["status"] == "cancelled"
    assert client.delete(f"{API}/sweeps/{sweep['id']}").status_code == 204
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(SweepTrial)) == 0
        assert session.scalar(select(func.count()).select_from(SweepRung)) == 0
        assert session.scalar(select(func.count()).select_from(Sweep)) == 0


def test_concurrent_claims_and_ends_never_pass_parallelism_or_budget(
    client: TestClient, engine: Engine
) -> None:
    """Claims and completions from four threads at once (on PostgreSQL, each its own
    connection racing for the sweep's row lock): never over 2 in flight, exactly 8 jobs."""
    sweep = _create(client, _search(max_jobs=8, parallelism=2))

    def claim_and_finish(worker: int) -> bool:
        claimed = claim(client, worker_id=f"w{worker}")
        if claimed is not None:
            _finish(client, claimed, 1.0 + worker)
        return claimed is not None

    with ThreadPoolExecutor(4) as pool:
        for _ in range(12):
            # The whole round, not `any` over the lazy map: stopping at its first True
            # would start the next round while this one's jobs are still ending.
            if not any(list(pool.map(claim_and_finish, range(4)))):
                break
            assert _active(engine, sweep["id"]) <= 2
    final = _sweep(client, sweep["id"])
    assert final["trials"] == 8 and final["status"] == "succeeded", final
    with Session(engine) as session:
        jobs = session.scalars(select(Job).where(Job.sweep_id == sweep["id"])).all()
    moments = sorted(
        [(j.created_at, 1) for j in jobs] + [(j.ended_at, -1) for j in jobs],
        key=lambda m: (m[0], m[1]),
    )
    in_flight = np.cumsum([change for _, change in moments])
    assert in_flight.max() <= 2
