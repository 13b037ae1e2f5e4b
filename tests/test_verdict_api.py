"""GET /compare/verdict and /sweeps/{id}/verdict on both backends: every number checked
against an independent computation (numpy, scipy.stats.ttest_ind) of the runs' logged
values, for each summary, with diverged (flag and non-finite) and never-reached runs."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import scipy.stats
from fastapi.testclient import TestClient
from pydantic import SecretStr
from scipy.integrate import trapezoid

from service import Settings, create_app
from tests.factories import log_points, make_run
from tests.jobs_support import TINY

API = "/api/v1"
STEPS = np.arange(0, 101, 5)
THRESHOLD = 0.3
# momentum -> (floor, decay, per-seed offsets): 0.5 ends near the threshold, so two of its
# runs never reach it; 0.95 is close to 0.9 with a wide spread (not distinguishable);
# 0.99 is lowest, but two of its runs diverge (one by its flag, one by a NaN).
DESIGN = {
    0.5: (0.30, 20.0, [0.02, -0.015, 0.01, -0.01]),
    0.9: (0.10, 10.0, [0.01, -0.01, 0.005, -0.004]),
    0.95: (0.105, 10.0, [0.03, -0.03, 0.02, -0.025]),
    0.99: (0.05, 5.0, [0.0, 0.01, -0.01, 0.003, -0.002]),
}
FLAGGED, NON_FINITE = 3, 4  # seeds of 0.99


@dataclass
class Logged:
    """What the test logged, by momentum: each run's id, values and diverged state."""

    runs: dict[float, list[tuple[int, np.ndarray, bool]]] = field(default_factory=dict)
    empty_run: int = 0

    def ids(self) -> str:
        everyone = [run_id for runs in self.runs.values() for run_id, _, _ in runs]
        return ",".join(str(run_id) for run_id in [*everyone, self.empty_run])


def _wire(value: float) -> float | str:
    return "NaN" if math.isnan(value) else float(value)


def log_design(client: TestClient) -> Logged:
    rng = np.random.default_rng(7)
    logged = Logged()
    for momentum, (floor, decay, offsets) in DESIGN.items():
        for seed, offset in enumerate(offsets):
            values = floor + offset + 0.9 * np.exp(-STEPS / decay)
            values = values + rng.normal(scale=0.003, size=len(STEPS))
            diverged = momentum == 0.99 and seed in (FLAGGED, NON_FINITE)
            if momentum == 0.99 and seed == NON_FINITE:
                values[-3:] = math.nan
            run = make_run(
                client, params={"optimizer": "momentum", "momentum": momentum, "seed": seed}
            )
            points = [
                {"key": "loss", "step": int(s), "value": _wire(v)}
                for s, v in zip(STEPS, values, strict=True)
            ]
            log_points(client, run["id"], points)
            # The NaN marked the run diverged; clear the flag: the NaN alone must count.
            flag = momentum == 0.99 and seed == FLAGGED
            patched = client.patch(f"{API}/runs/{run['id']}", json={"diverged": flag})
            assert patched.status_code == 200, patched.text
            logged.runs.setdefault(momentum, []).append((run["id"], values, diverged))
    logged.empty_run = make_run(client, params={"momentum": 0.9, "seed": 9})["id"]
    return logged


def number_of(values: np.ndarray, summary: str, mode: str) -> float:
    """One run's number, computed here from the logged values (not the service's code)."""
    finite = values[np.isfinite(values)]
    if summary == "final":
        return float(values[-1])
    if summary == "best":
        return float(finite.min() if mode == "min" else finite.max())
    if summary == "tail_mean":
        return float(values[STEPS >= STEPS[-1] - 0.1 * (STEPS[-1] - STEPS[0])].mean())
    if summary == "auc":
        return float(trapezoid(values, STEPS))
    hits = [s for s, v in zip(STEPS, values, strict=True) if v <= THRESHOLD]
    return float(hits[0]) if hits else float(STEPS[-1] + 1)


def expected_groups(
    logged: Logged, summary: str, mode: str, confidence: float, threshold: float | None
) -> list[dict]:
    out = []
    for momentum, runs in logged.runs.items():
        kept = [values for _, values, diverged in runs if not diverged]
        xs = np.array([number_of(values, summary, mode) for values in kept])
        n = len(xs)
        std = float(np.std(xs, ddof=1))
        half = scipy.stats.t.ppf(1 - (1 - confidence) / 2, n - 1) * std / math.sqrt(n)
        reached = sum(bool((values <= THRESHOLD).any()) for values in kept)
        out.append(
            {"value": momentum, "n": n, "mean": float(np.mean(xs)), "std": std, "xs": xs,
             "ci_low": float(np.mean(xs)) - half, "ci_high": float(np.mean(xs)) + half,
             "reached": reached if threshold is not None else n,
             "diverged": len(runs) - n}
        )  # fmt: skip
    return out


def expected_comparison(group: dict, best: dict, alpha: float) -> dict[str, Any]:
    p_value = float(scipy.stats.ttest_ind(group["xs"], best["xs"], equal_var=False).pvalue)
    delta = group["mean"] - best["mean"]
    z = scipy.stats.norm.ppf(1 - alpha / 2) + scipy.stats.norm.ppf(0.8)
    spread = (group["std"] ** 2 + best["std"] ** 2) / 2
    needed = None
    if p_value >= alpha and delta != 0:
        needed = math.ceil(2 * z**2 * spread / delta**2)
    return {"value": group["value"], "versus": best["value"], "difference": delta,
            "p_value": p_value, "significant": p_value < alpha, "seeds_needed": needed}  # fmt: skip


def check_numbers(body: dict, logged: Logged, case: tuple[str, str, float, float | None]) -> None:
    summary, mode, confidence, threshold = case
    groups = expected_groups(logged, summary, mode, confidence, threshold)
    by_value = {group["value"]: group for group in groups}
    for got, want in zip(body["groups"], groups, strict=True):
        assert got["value"] == want["value"]
        for name in ("n", "reached", "diverged"):
            assert got[name] == want[name], (summary, got["value"], name)
        for name in ("mean", "std", "ci_low", "ci_high"):
            assert got[name] == pytest.approx(want[name], rel=1e-9), (summary, name)
    assert body["groups"][1]["run_ids"][-1] == logged.empty_run
    assert body["groups"][1]["missing"] == 1
    better = min if mode == "min" or summary == "steps_to_threshold" else max
    best = better((g for g in groups if g["diverged"] == 0), key=lambda g: g["mean"])
    assert body["best"] == {"value": best["value"], "mean": pytest.approx(best["mean"], rel=1e-9)}
    others = [g for g in groups if g is not best]
    alpha = 1 - confidence
    for got, group in zip(body["comparisons"], others, strict=True):
        want = expected_comparison(group, by_value[best["value"]], alpha)
        assert got == {**want, "difference": pytest.approx(want["difference"], rel=1e-9),
                       "p_value": pytest.approx(want["p_value"], rel=1e-6)}, summary  # fmt: skip


CASES = [  # summary, mode, confidence, threshold
    ("final", "min", 0.95, None),
    ("best", "min", 0.95, None),
    ("best", "max", 0.8, None),
    ("tail_mean", "min", 0.95, THRESHOLD),
    ("tail_mean", "min", 0.99, None),
    ("auc", "min", 0.95, None),
    ("steps_to_threshold", "min", 0.95, THRESHOLD),
]


@pytest.mark.filterwarnings("ignore:Precision loss occurred")  # scipy, on nearly equal steps
def test_every_number_matches_an_independent_computation(client: TestClient) -> None:
    logged = log_design(client)
    answers = {}
    for case in CASES:
        summary, mode, confidence, threshold = case
        query = {"run_ids": logged.ids(), "key": "loss", "by": "momentum", "mode": mode,
                 "summary": summary, "confidence": confidence, "threshold": threshold}  # fmt: skip
        given = {name: value for name, value in query.items() if value is not None}
        response = client.get(f"{API}/compare/verdict", params=given)
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["summary"], body["mode"], body["confidence"]) == (summary, mode, confidence)
        assert (body["by"], body["key"], body["threshold"]) == ("momentum", "loss", threshold)
        check_numbers(body, logged, case)
        answers[summary, mode, confidence] = body
    # The design reaches every branch: beaten, undecided with a count, never reached.
    comparisons = [c for body in answers.values() for c in body["comparisons"]]
    assert any(c["significant"] for c in comparisons)
    assert any(c["seeds_needed"] for c in comparisons)
    assert answers["steps_to_threshold", "min", 0.95]["groups"][0]["reached"] == 2
    assert answers["tail_mean", "min", 0.95]["groups"][0]["reached"] == 2
    assert answers["final", "min", 0.95]["groups"][0]["reached"] == 4
    check_sentences(answers)


def check_sentences(answers: dict[tuple[str, str, float], dict]) -> None:
    tail = answers["tail_mean", "min", 0.95]
    best = tail["groups"][1]
    assert tail["verdict"].startswith(
        f"momentum=0.9 has the lowest mean tail loss ({best['mean']:.3g} ± {best['std']:.2g}, "
        f"{best['n']} runs); it beats 0.5 (p"
    )
    undecided = tail["comparisons"][1]
    assert undecided["value"] == 0.95 and not undecided["significant"]
    assert (
        f"0.95 is not distinguishable yet (p={undecided['p_value']:.2g}): about "
        f"{undecided['seeds_needed']} runs per value would tell a difference this size"
    ) in tail["verdict"]
    assert (
        "0.99 has a lower mean" in tail["verdict"] and "2 runs of 0.99 diverged" in tail["verdict"]
    )
    assert tail["verdict"].endswith(".") and tail["verdict"].count(".") >= 1
    steps_answer = answers["steps_to_threshold", "min", 0.95]
    steps = steps_answer["verdict"]
    fewest = steps_answer["best"]["value"]
    assert steps.startswith(
        f"momentum={fewest} reaches loss <= 0.3 in the fewest steps on average ("
    )
    assert "0.5 (at least" in steps
    highest = answers["best", "max", 0.8]["verdict"]
    assert "has the highest mean best loss" in highest


def test_bad_parameters_are_422s_naming_the_parameter(client: TestClient) -> None:
    run = make_run(client)
    log_points(client, run["id"], [{"key": "loss", "step": 0, "value": 1.0}])
    cases = [
        ({"summary": "steps_to_threshold"}, "threshold"),
        ({"confidence": 0}, "confidence"),
        ({"confidence": 1}, "confidence"),
        ({"confidence": 1.5}, "confidence"),
        ({"by": "momentun"}, "by"),
        ({"summary": "median"}, "summary"),
        ({"mode": "lowest"}, "mode"),
        ({"key": "bad\nkey"}, "key"),
        ({"threshold": "nan"}, "threshold"),
        ({"steps": 3}, "steps"),
    ]
    for path in ("/compare/verdict", "/sweeps/1/verdict"):
        for extra, name in cases:
            if path.startswith("/sweeps") and name == "by":
                continue  # an unknown parameter is found among the sweep's runs: below
            query = {"run_ids": str(run["id"]), **extra} if path.startswith("/compare") else extra
            response = client.get(f"{API}{path}", params=query)
            assert response.status_code == 422, (path, extra, response.text)
            assert [d["loc"] for d in response.json()["error"]["detail"]] == [["query", name]]
    missing = client.get(f"{API}/compare/verdict", params={"run_ids": f"{run['id']},999999"})
    assert (missing.status_code, missing.json()["error"]["message"]) == (
        404,
        "run 999999 does not exist",
    )
    assert client.get(f"{API}/sweeps/999999/verdict").status_code == 404


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # both: the tests above
def test_a_whole_sweep_of_max_grid_size_runs(client: TestClient, settings: Settings) -> None:
    """256 runs (MOMENTUM_MAX_GRID_SIZE): the sweep verdict reads its runs itself and
    /compare/verdict takes 256 run ids; one more is refused, naming the cap."""
    assert settings.max_grid_size == 256
    grid = {"lr": [0.01, 0.02, 0.05, 0.1], "seed": list(range(64))}
    sweep = client.post(f"{API}/sweeps", json={"name": "big", "base": TINY, "grid": grid})
    assert sweep.status_code == 201, sweep.text
    jobs = client.get(f"{API}/jobs", params={"sweep_id": sweep.json()["id"], "limit": 1000})
    run_ids = []
    for job in jobs.json()["items"]:
        lr, seed = job["config"]["lr"], job["config"]["seed"]
        final = 1.0 - lr * 5 + 0.01 * (seed % 7)
        log_points(client, job["run_id"], [{"key": "loss", "step": 0, "value": final}])
        run_ids.append(job["run_id"])
    body = client.get(f"{API}/sweeps/{sweep.json()['id']}/verdict").json()
    assert (body["by"], body["sweep_id"], body["summary"]) == (
        "lr",
        sweep.json()["id"],
        "tail_mean",
    )
    assert [(g["value"], g["n"]) for g in body["groups"]] == [(lr, 64) for lr in grid["lr"]]
    assert body["best"]["value"] == 0.1
    assert body["verdict"].startswith("lr=0.1 has the lowest mean tail loss")
    ids = ",".join(map(str, sorted(run_ids)))
    by_lr = client.get(f"{API}/compare/verdict", params={"run_ids": ids, "by": "lr"})
    assert by_lr.status_code == 200, by_lr.text
    assert {**by_lr.json(), "sweep_id": body["sweep_id"]} == body
    too_many = client.get(f"{API}/compare/verdict", params={"run_ids": f"{ids},999999"})
    assert too_many.status_code == 422
    assert too_many.json()["error"]["detail"][0]["loc"] == ["query", "run_ids"]
    assert "at most 256" in too_many.json()["error"]["message"]
    unknown = client.get(f"{API}/sweeps/{sweep.json()['id']}/verdict", params={"by": "mu"})
    assert unknown.status_code == 422 and "seed" in unknown.json()["error"]["message"]


def test_a_read_token_gets_a_verdict_and_no_token_is_refused_first(settings: Settings) -> None:
    guarded = settings.model_copy(
        update={"read_token": SecretStr("reader"), "token": SecretStr("admin")}
    )
    with TestClient(create_app(guarded)) as client:
        admin, reader = {"Authorization": "Bearer admin"}, {"Authorization": "Bearer reader"}
        run = client.post(
            f"{API}/runs", json={"name": "r", "params": {"momentum": 0.9}}, headers=admin
        )
        points = {"points": [{"key": "loss", "step": 0, "value": 1.0}]}
        client.post(f"{API}/runs/{run.json()['id']}/metrics", json=points, headers=admin)
        query = {"run_ids": run.json()["id"]}
        assert client.get(f"{API}/compare/verdict", params=query).status_code == 401
        bad = {**query, "confidence": 7}  # credentials are checked before the parameters
        assert client.get(f"{API}/compare/verdict", params=bad).status_code == 401
        assert client.get(f"{API}/sweeps/1/verdict").status_code == 401
        answer = client.get(f"{API}/compare/verdict", params=query, headers=reader)
        assert answer.status_code == 200, answer.text
        assert answer.json()["verdict"] == (
            "momentum=0.9 is the only value (1, 1 run): nothing to compare it with."
        )
        assert client.get(f"{API}/sweeps/1/verdict", headers=reader).status_code == 404
