"""Compare, summary, groups, sweep summary and CSV export over the API, on both backends."""

from __future__ import annotations

import csv
import io
import math
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy.orm import sessionmaker

from service import Settings, create_app
from service.analysis.smoothing import debiased_ema
from service.analysis.summary import summarize
from service.db import make_engine
from service.export import plan, stream_csv
from service.models import Run
from tests.factories import log_points, make_run
from tests.jobs_support import TINY
from tests.support import live_server

API = "/api/v1"


def _log(client: TestClient, run_id: int, key: str, steps: Any, values: Any, **extra: Any) -> None:
    points = [
        {"key": key, "step": int(step), "value": _wire(value), **extra}
        for step, value in zip(steps, values, strict=True)
    ]
    for start in range(0, len(points), 50_000):
        log_points(client, run_id, points[start : start + 50_000])


def _wire(value: float) -> float | str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return float(value)


def _get(client: TestClient, path: str, status: int = 200, **query: Any) -> Any:
    response = client.get(f"{API}{path}", params=query)
    assert response.status_code == status, response.text
    return response.json()


def _floats(encoded: list[Any]) -> list[float]:
    return [float(value) for value in encoded]


def test_compare_smooths_by_hand_and_passes_nan_through(client: TestClient) -> None:
    run = make_run(client)
    _log(client, run["id"], "loss", [0, 1, 2, 3], [1.0, 2.0, math.nan, 4.0])
    body = _get(client, "/compare", run_ids=str(run["id"]), keys="loss", smoothing=0.5)
    (series,) = body["series"]
    assert series["values"] == [1.0, 2.0, "NaN", 4.0]
    assert series["smoothed"][2] == "NaN"
    np.testing.assert_allclose(_floats(series["smoothed"])[:2], [1.0, 5 / 3])
    assert series["smoothed"][3] == pytest.approx(3.0)
    assert "smoothed" not in _get(client, "/compare", run_ids=run["id"], keys="loss")["series"][0]


def test_smoothing_runs_at_full_resolution_then_cuts_at_the_same_points(
    client: TestClient,
) -> None:
    run = make_run(client)
    rng = np.random.default_rng(3)
    values = np.exp(-np.arange(20_000) / 4000) + rng.normal(scale=0.05, size=20_000)
    values[[777, 15_000]] = [math.nan, 9.0]
    _log(client, run["id"], "loss", range(20_000), values)
    # Full resolution is asked for: a comparison names 10,000 points a series by default.
    full = _get(
        client, "/compare", run_ids=run["id"], keys="loss", smoothing=0.9, max_points=20_000
    )["series"][0]
    assert not full["downsampled"]
    small = _get(client, "/compare", run_ids=run["id"], keys="loss", smoothing=0.9, max_points=100)[
        "series"
    ][0]
    assert (small["total"], small["downsampled"], len(small["steps"]) <= 100) == (
        20_000,
        True,
        True,
    )
    assert {777, 15_000} <= set(small["steps"])  # the NaN and the spike survive
    by_step = dict(zip(full["steps"], full["smoothed"], strict=True))
    assert small["smoothed"] == [by_step[step] for step in small["steps"]]
    expected = debiased_ema(values, 0.9)
    np.testing.assert_allclose(_floats(full["smoothed"]), expected, rtol=1e-12)
    # Zooming does not change the smoothed curve either.
    zoomed = _get(
        client, "/compare", run_ids=run["id"], keys="loss", smoothing=0.9, start_step=10_000
    )["series"][0]
    assert zoomed["steps"][0] == 10_000
    assert zoomed["smoothed"] == full["smoothed"][10_000:]


def test_each_run_on_its_own_grid_in_the_order_asked(client: TestClient) -> None:
    dense, sparse = make_run(client, name="dense"), make_run(client, name="sparse")
    _log(client, dense["id"], "loss", range(10), [1.0] * 10)
    _log(client, sparse["id"], "loss", range(0, 10, 5), [2.0, 3.0])
    _log(client, sparse["id"], "accuracy", [0], [0.5])
    ids = f"{sparse['id']},{dense['id']}"
    series = _get(client, "/compare", run_ids=ids, keys="loss,accuracy")["series"]
    assert [(s["run_name"], s["key"], s["steps"]) for s in series] == [
        ("sparse", "loss", [0, 5]),
        ("sparse", "accuracy", [0]),
        ("dense", "loss", list(range(10))),
        ("dense", "accuracy", []),  # never logged: empty, not an error
    ]


def test_x_wall_time_counts_seconds_from_the_runs_first_point(client: TestClient) -> None:
    run = make_run(client)
    _log(client, run["id"], "loss", [0, 1, 2], [3.0, 2.0, 1.0])  # wall_time: now
    points = [{"key": "accuracy", "step": s, "value": 0.5, "wall_time": 100.0 + s} for s in (0, 4)]
    log_points(client, run["id"], points)
    series = _get(client, "/compare", run_ids=run["id"], keys="accuracy,loss", x="wall_time")
    accuracy, loss = series["series"]
    assert accuracy["wall_times"] == [0.0, 4.0]
    assert loss["wall_times"][0] > 1e9  # logged "now", long after the accuracy points
    raw = _get(client, "/compare", run_ids=run["id"], keys="accuracy")["series"][0]
    assert raw["wall_times"] == [100.0, 104.0]


def test_summary_on_different_grids_with_a_baseline_and_a_diverged_run(
    client: TestClient,
) -> None:
    every = make_run(client, name="every step")
    fifth = make_run(client, name="every 5th step")
    broken = make_run(client, name="diverges")
    _log(client, every["id"], "loss", range(100), [1 - s / 100 for s in range(100)])
    _log(client, fifth["id"], "loss", range(0, 100, 5), [1 - s / 50 for s in range(0, 100, 5)])
    _log(client, broken["id"], "loss", [0, 10, 20], [1.0, 0.1, math.inf])
    ids = f"{every['id']},{fifth['id']},{broken['id']}"
    body = _get(
        client, "/compare/summary", run_ids=ids, key="loss", threshold=0.5, baseline=every["id"]
    )
    runs = {run["run_id"]: run for run in body["runs"]}
    a, b, c = runs[every["id"]], runs[fifth["id"]], runs[broken["id"]]
    assert (a["steps_to_threshold"], b["steps_to_threshold"], c["steps_to_threshold"]) == (
        50,
        25,
        10,
    )
    assert (a["speedup"], b["speedup"], c["speedup"]) == (1.0, 2.0, 5.0)
    assert (a["final"], a["best"], a["best_step"]) == (pytest.approx(0.01), pytest.approx(0.01), 99)
    assert a["tail_mean"] == pytest.approx(
        np.mean([1 - s / 100 for s in range(90, 100)])
    )  # >= 89.1
    assert a["auc"] == pytest.approx(99 * (1 + 0.01) / 2)
    assert (c["final"], c["best"], c["diverged"], c["auc"]) == ("Infinity", 0.1, True, "Infinity")
    assert (a["diverged"], b["points"], b["last_step"]) == (False, 20, 95)
    # The diverged run reached 0.5 first, yet ranks last: divergence is not a result.
    assert body["ranking"] == [fifth["id"], every["id"], broken["id"]]
    assert "did not diverge" in body["criterion"]
    maximize = _get(client, "/compare/summary", run_ids=ids, key="loss", mode="max")
    assert [r["best"] for r in maximize["runs"]] == [1.0, 1.0, 1.0]
    assert all(r["steps_to_threshold"] is None for r in maximize["runs"])


def _seeded_runs(client: TestClient) -> dict[str, list[int]]:
    """momentum 0.0 (two seeds, loss 1 - s/100 and 1 - s/50 over 0..40 every 10 steps),
    0.9 (two seeds, one diverging at step 20)."""
    made: dict[str, list[int]] = {"0.0": [], "0.9": []}
    curves = {
        ("0.0", 0): [1.0, 0.9, 0.8, 0.7, 0.6],
        ("0.0", 1): [1.0, 0.8, 0.6, 0.4, 0.2],
        ("0.9", 0): [1.0, 0.5, 0.25, 0.125, 0.1],
        ("0.9", 1): [1.0, 0.4, math.nan],
    }
    for (mu, seed), values in curves.items():
        # An int 0 in one run's params and 0.0 in another's are one setting.
        momentum: float = 0 if (mu, seed) == ("0.0", 0) else float(mu)
        params = {"momentum": momentum, "seed": seed}
        run = make_run(client, params={**params, "optimizer": "momentum"})
        _log(client, run["id"], "loss", range(0, 10 * len(values), 10), values)
        made[mu].append(run["id"])
    return made


def test_groups_by_momentum_with_a_diverged_member(client: TestClient) -> None:
    made = _seeded_runs(client)
    ids = ",".join(str(i) for i in made["0.0"] + made["0.9"])
    body = _get(client, "/compare/groups", run_ids=ids, key="loss", by="momentum", threshold=0.5)
    zero, high = body["groups"]
    assert (zero["value"], zero["run_ids"], zero["diverged"]) == (0.0, made["0.0"], 0)
    assert (high["value"], high["run_ids"], high["diverged"]) == (0.9, made["0.9"], 1)
    assert zero["curve"]["steps"] == [0, 10, 20, 30, 40]
    np.testing.assert_allclose(zero["curve"]["mean"], [1.0, 0.85, 0.7, 0.55, 0.4])
    np.testing.assert_allclose(zero["curve"]["std"][1], math.sqrt(0.005))
    half = 12.7062 * math.sqrt(0.005) / math.sqrt(2)
    assert zero["curve"]["ci_high"][1] == pytest.approx(0.85 + half)
    # The diverged seed stops counting where its value is NaN (and in the interval before).
    assert high["curve"]["count"] == [2, 2, 1, 1, 1]
    assert high["curve"]["std"][2:] == [None, None, None]
    assert (zero["final"]["mean"], zero["final"]["n"]) == (pytest.approx(0.4), 2)
    assert (high["final"]["mean"], high["final"]["n"]) == (0.1, 1)
    # Seed 0 at momentum 0 never reaches 0.5: the mean is over the one run that did.
    assert zero["steps_to_threshold"] == {"mean": 30.0, "std": None, "n": 1}
    assert high["steps_to_threshold"] == {"mean": 10.0, "std": 0.0, "n": 2}
    # 0.9 is faster but one of its seeds diverged, and not every 0.0 run reached the
    # threshold: the best is 0.0 by final value, and the answer says so.
    assert body["best"] == {"value": 0.0, "criterion": "lowest mean final loss (no run diverged)"}
    assert "linear" in body["interpolation"]
    by_seed = _get(client, "/compare/groups", run_ids=ids, key="loss", by="seed")
    assert [g["value"] for g in by_seed["groups"]] == [0, 1]
    unknown = _get(client, "/compare/groups", 422, run_ids=ids, key="loss", by="momentun")
    assert unknown["error"]["detail"][0]["loc"] == ["query", "by"]
    assert "seed" in unknown["error"]["message"]


def test_sweep_summary_groups_the_sweeps_runs(client: TestClient) -> None:
    grid = {"momentum": [0.0, 0.9], "seed": [0, 1]}
    sweep = client.post(f"{API}/sweeps", json={"name": "mu", "base": TINY, "grid": grid}).json()
    jobs = _get(client, "/jobs", sweep_id=sweep["id"])["items"]
    for job in jobs:
        mu = job["config"]["momentum"]
        _log(client, job["run_id"], "loss", [0, 10], [1.0, 0.5 - mu / 2])
    body = _get(client, f"/sweeps/{sweep['id']}/summary", key="loss", threshold=0.3)
    assert (body["sweep_id"], body["by"]) == (sweep["id"], "momentum")
    assert [(g["value"], g["runs"]) for g in body["groups"]] == [(0.0, 2), (0.9, 2)]
    assert body["groups"][1]["final"] == {"mean": pytest.approx(0.05), "std": 0.0, "n": 2}
    assert body["best"]["value"] == 0.9
    assert [
        g["value"]
        for g in _get(client, f"/sweeps/{sweep['id']}/summary", key="loss", by="seed")["groups"]
    ] == [0, 1]
    _get(client, "/sweeps/999999/summary", 404, key="loss")


def test_export_csv_is_long_format_with_flattened_params(client: TestClient) -> None:
    run = make_run(client, name='a, quoted "name"', params={"momentum": 0.9, "opt": {"lr": 0.1}})
    other = make_run(client, name="b", params={"seed": 3})
    log_points(client, run["id"], [{"key": "loss", "step": 0, "value": 2.5, "wall_time": 10.0}])
    log_points(client, run["id"], [{"key": "loss", "step": 1, "value": "NaN", "wall_time": 11.0}])
    log_points(
        client,
        other["id"],
        [{"key": "train/acc", "step": 7, "value": "-Infinity", "wall_time": 12.5}],
    )
    response = client.get(f"{API}/export.csv", params={"run_ids": f"{run['id']},{other['id']}"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows == [
        [
            "run_id",
            "run_name",
            "params.momentum",
            "params.opt.lr",
            "params.seed",
            "key",
            "step",
            "value",
            "wall_time",
        ],
        [str(run["id"]), 'a, quoted "name"', "0.9", "0.1", "", "loss", "0", "2.5", "10.0"],
        [str(run["id"]), 'a, quoted "name"', "0.9", "0.1", "", "loss", "1", "NaN", "11.0"],
        [str(other["id"]), "b", "", "", "3", "train/acc", "7", "-Infinity", "12.5"],
    ]
    only = client.get(f"{API}/export.csv", params={"run_ids": other["id"], "keys": "loss"})
    assert only.text.splitlines() == ["run_id,run_name,params.seed,key,step,value,wall_time"]


# Text a spreadsheet would run as a formula (OWASP's CSV injection starts), with numbers
# that start the same way but must stay numbers.
FORMULA_NAME = '=HYPERLINK("https://evil.example","open")'
FORMULA_PARAMS = {
    "optimizer": "=1+1",
    "note": "-x",
    "sum": "@SUM(A1:A9)",
    "plus": "+cmd",
    "tab": "\tx",
    "cr": "\r=1",
    "plain": "adam",
    "as_text": "-0.5",
    "list": ["=1"],
    "momentum": -0.5,
    "shift": -3,
    "tiny": -1e-300,
}
FORMULA_KEY = "-loss"


def _log_formula_run(post: Any) -> int:
    """The run above through `post` (a TestClient's or httpx's), with negative values."""
    run = post(f"{API}/runs", json={"name": FORMULA_NAME, "params": FORMULA_PARAMS})
    assert run.status_code == 201, run.text
    points = [
        {"key": FORMULA_KEY, "step": 0, "value": -0.5, "wall_time": 1.0},
        {"key": FORMULA_KEY, "step": 1, "value": "-Infinity", "wall_time": 2.0},
    ]
    logged = post(f"{API}/runs/{run.json()['id']}/metrics", json={"points": points})
    assert logged.status_code == 200, logged.text
    return int(run.json()["id"])


def _assert_formulas_are_quoted(run_id: int, export_text: str) -> None:
    header, *rows = list(csv.reader(io.StringIO(export_text)))
    cells = [dict(zip(header, row, strict=True)) for row in rows]
    assert [(c["step"], c["value"]) for c in cells] == [("0", "-0.5"), ("1", "-Infinity")]
    for cell in cells:
        assert cell["run_id"] == str(run_id)
        assert cell["run_name"] == "'" + FORMULA_NAME
        assert cell["key"] == "'" + FORMULA_KEY
        assert {name: cell[f"params.{name}"] for name in FORMULA_PARAMS} == {
            "optimizer": "'=1+1",
            "note": "'-x",
            "sum": "'@SUM(A1:A9)",
            "plus": "'+cmd",
            "tab": "'\tx",
            "cr": "'\r=1",
            "plain": "adam",
            "as_text": "'-0.5",  # text that looks like a number is still text
            "list": '["=1"]',
            "momentum": "-0.5",  # numbers, finite or not, stay numbers
            "shift": "-3",
            "tiny": "-1e-300",
        }


def test_export_quotes_text_cells_a_spreadsheet_would_run_as_formulas(
    client: TestClient,
) -> None:
    run_id = _log_formula_run(client.post)
    response = client.get(f"{API}/export.csv", params={"run_ids": run_id})
    assert response.status_code == 200, response.text
    _assert_formulas_are_quoted(run_id, response.text)


def test_export_from_the_real_server_quotes_formulas(database_url: str) -> None:
    with live_server({"MOMENTUM_DATABASE_URL": database_url}) as url:
        with httpx.Client(base_url=url, timeout=30.0) as http:
            run_id = _log_formula_run(http.post)
            response = http.get(f"{API}/export.csv", params={"run_ids": run_id})
    assert response.status_code == 200, response.text
    _assert_formulas_are_quoted(run_id, response.text)


def test_export_reads_in_point_windows_across_gaps(client: TestClient, settings: Settings) -> None:
    run = make_run(client)
    steps = [0, 1, 2, 3, 4, 5, 6, 100, 5000, 5001, 2**40]
    _log(client, run["id"], "loss", steps, [float(s % 7) for s in steps])
    engine = make_engine(settings)
    sessions = sessionmaker(engine)
    try:
        with sessions() as session:
            export_plan = plan(session, [session.get(Run, run["id"])], ["loss"])
        chunks = list(stream_csv(sessions, export_plan, window_points=3))
    finally:
        engine.dispose()
    lines = "".join(chunks).splitlines()[1:]
    assert [int(line.split(",")[-3]) for line in lines] == steps
    # A window is whole blocks (4,096 steps) until it holds 3 points: block 0 (0-100),
    # then block 1 (5000-5001) with the tail's chunk (2**40), the rest of the series.
    assert [len(c.splitlines()) for c in chunks[1:]] == [8, 3]


def test_bad_requests_name_the_parameter(client: TestClient) -> None:
    run = make_run(client)
    for bad in ("1,x", "", "0", "1,,2", "-1", "²", "9" * 5000, str(2**31)):
        error = _get(client, "/compare", 422, run_ids=bad, keys="loss")["error"]
        assert error["detail"][0]["loc"] == ["query", "run_ids"], bad
        assert error["message"].startswith("run_ids: ")
    missing = _get(
        client, "/compare/summary", 404, run_ids=f"{run['id']},999998,999999", key="loss"
    )
    assert missing["error"]["message"] == "runs 999998, 999999 do not exist"
    typo = _get(client, "/compare", 422, run_ids=run["id"], keys="loss", smoothin=0.5)
    assert typo["error"]["code"] == "unknown_query_parameter"
    assert _get(client, "/compare", 422, run_ids=run["id"], keys="loss", smoothing=1)["error"]
    assert _get(client, "/compare", 422, run_ids=run["id"], keys="lo$s")["error"]["detail"][0][
        "loc"
    ] == ["query", "keys"]
    baseline = _get(client, "/compare/summary", 422, run_ids=run["id"], key="loss", baseline=99)
    assert baseline["error"]["detail"][0]["loc"] == ["query", "baseline"]
    nan = _get(client, "/compare/summary", 422, run_ids=run["id"], key="loss", threshold="nan")
    assert nan["error"]["detail"][0]["loc"] == ["query", "threshold"]
    _get(client, "/export.csv", 404, run_ids="999999")


def test_too_many_run_ids_is_a_422_with_the_cap(settings: Settings) -> None:
    capped = settings.model_copy(update={"max_compare_runs": 3, "max_grid_size": 2})
    with TestClient(create_app(capped)) as client:
        error = _get(client, "/compare", 422, run_ids="1,2,3,4", keys="loss")["error"]
        assert error["detail"][0]["loc"] == ["query", "run_ids"]
        assert "at most 3" in error["message"]
        # Repeats collapse before the cap counts.
        assert _get(client, "/compare", 404, run_ids="1,1,1,1,2", keys="loss")


def test_answers_equal_the_analysis_of_the_stored_curve(client: TestClient) -> None:
    """Every backend stores and reads back the same floats (NaN, ±Infinity included),
    so each endpoint equals the pure analysis of the curve that was sent."""
    run = make_run(client)
    rng = np.random.default_rng(11)
    steps = np.sort(rng.choice(30_000, size=9_000, replace=False))
    values = rng.lognormal(size=len(steps))
    values[[10, 500, 8_000]] = [math.nan, math.inf, -math.inf]
    _log(client, run["id"], "loss", steps, values)
    series = _get(client, "/compare", run_ids=run["id"], keys="loss", smoothing=0.6)["series"][0]
    assert series["steps"] == steps.tolist()
    np.testing.assert_array_equal(_floats(series["values"]), values)
    np.testing.assert_array_equal(_floats(series["smoothed"]), debiased_ema(values, 0.6))
    expected = summarize(steps, values, "min", threshold=0.3)
    got = _get(client, "/compare/summary", run_ids=run["id"], key="loss", threshold=0.3)["runs"][0]
    assert (got["best"], got["best_step"], got["steps_to_threshold"]) == (
        expected.best,
        expected.best_step,
        expected.steps_to_threshold,
    )
    assert float(got["tail_mean"]) == expected.tail_mean


def test_a_read_token_compares_and_exports_and_no_token_is_refused(settings: Settings) -> None:
    guarded = settings.model_copy(
        update={"read_token": SecretStr("reader"), "token": SecretStr("admin")}
    )
    with TestClient(create_app(guarded)) as client:
        admin = {"Authorization": "Bearer admin"}
        run = client.post(f"{API}/runs", json={"name": "r"}, headers=admin).json()
        points = [{"key": "loss", "step": 0, "value": 1.0}]
        client.post(f"{API}/runs/{run['id']}/metrics", json={"points": points}, headers=admin)
        reader = {"Authorization": "Bearer reader"}
        for path, query in (
            ("/compare", {"keys": "loss"}),
            ("/compare/summary", {"key": "loss"}),
            ("/compare/groups", {"key": "loss", "by": "name_missing_everywhere"}),
            ("/export.csv", {}),
        ):
            params = {"run_ids": run["id"], **query}
            assert client.get(f"{API}{path}", params=params).status_code == 401
            expected = 422 if path == "/compare/groups" else 200
            assert client.get(f"{API}{path}", params=params, headers=reader).status_code == expected
