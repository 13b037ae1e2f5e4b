"""The sweep view's pictures and the compare view of many runs, in a real headless
Chromium against the real service (SQLite). Runs are seeded through the API, their
points posted directly (no training): a two-param sweep draws a heatmap and the
effective-step-size chart, a three-param sweep parallel coordinates (the strict Plotly.js
bundle, loaded then, under the page's policy), an error never looks like a verdict, and
legends, hovers and tables name only the params that differ."""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page

from tests.browser import chromium, wait_for_function, watch
from tests.support import live_server
from tests.test_dashboard import RECORD_CSP_VIOLATIONS

pytestmark = pytest.mark.e2e

API = "/api/v1"
BASE = {"dataset": "ravine", "model": "linear", "steps": 40}
TIMEOUT = 60  # seconds: seeding a hundred runs on a busy machine


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[str]:
    database = tmp_path_factory.mktemp("dashboard-sweeps") / "momentum.sqlite3"
    shutil.copyfile(sqlite_template, database)
    env = {"MOMENTUM_DATABASE_URL": f"sqlite:///{database}"}
    with live_server(env, timeout=120) as url:  # a start on a busy machine takes a while
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


class Opened:
    def __init__(self, page: Page, expected: list[str]) -> None:
        self.page = page
        self.expected = expected


@pytest.fixture
def opened(browser: Browser, tmp_path: Path) -> Iterator[Opened]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.add_init_script(RECORD_CSP_VIOLATIONS)
    problems = watch(page)
    try:
        yield Opened(page, problems.expected)
        problems.assert_none()  # no JavaScript errors in the console, no dialogs
        assert page.evaluate("window.cspViolations") == []
    finally:
        page.screenshot(path=str(tmp_path / "view.png"), full_page=True)
        context.close()


def loss_rate(config: dict[str, Any]) -> float:
    """Fastest near lr / (1 − μ) = 0.3, as a ridge; the seed and weight decay nudge it."""
    effective = config["lr"] / (1 - config["momentum"])
    ridge = 1 / (1 + abs(math.log10(effective / 0.3)))
    return ridge + config.get("seed", 0) / 40 + config.get("weight_decay", 0) * 50


def seeded_sweep(url: str, name: str, grid: dict[str, list[Any]]) -> dict[str, Any]:
    """A sweep whose runs hold a loss curve each (posted, not trained); returns the sweep."""
    with httpx.Client(base_url=f"{url}{API}", timeout=TIMEOUT) as http:
        response = http.post("/sweeps", json={"name": name, "base": BASE, "grid": grid})
        assert response.status_code == 201, response.text
        sweep = response.json()
        listed = http.get("/runs", params={"sweep_id": sweep["id"], "limit": 1000}).json()
        assert len(listed["items"]) == len(sweep["job_ids"])
        for run in listed["items"]:
            rate = loss_rate(run["params"])
            points = [{"key": "loss", "step": s, "value": 2 / (1 + rate * s)} for s in range(40)]
            posted = http.post(f"/runs/{run['id']}/metrics", json={"points": points})
            assert posted.status_code == 200, posted.text
    return sweep


def chart(page: Page, element_id: str) -> dict[str, Any]:
    """A chart's first trace as Plotly holds it (its own data, not the DOM)."""
    return page.evaluate(
        """id => { const t = document.getElementById(id).data[0];
                   return JSON.parse(JSON.stringify(t)); }""",
        element_id,
    )


def wait_for_trace(page: Page, element_id: str, trace_type: str) -> None:
    wait_for_function(
        page,
        "([id, type]) => document.getElementById(id).data?.[0]?.type === type",
        arg=[element_id, trace_type],
        timeout=30_000,
    )


def tail_means(url: str, run_ids: list[int]) -> dict[int, float]:
    query = {"run_ids": ",".join(map(str, run_ids)), "key": "loss"}
    summary = httpx.get(f"{url}{API}/compare/summary", params=query).json()
    return {run["run_id"]: run["tail_mean"] for run in summary["runs"]}


def test_a_two_param_sweep_draws_a_heatmap_and_the_effective_step_size(
    service: str, opened: Opened
) -> None:
    grid = {"momentum": [0.0, 0.9], "lr": [0.01, 0.1], "seed": [0, 1]}
    sweep = seeded_sweep(service, "lr-by-momentum", grid)
    page = opened.page
    page.goto(f"{service}/?view=sweep&sweep={sweep['id']}")
    wait_for_trace(page, "sweep-map", "heatmap")
    wait_for_trace(page, "sweep-step", "scatter")
    page.locator("#sweep-map .heatmaplayer image").wait_for()
    heatmap = chart(page, "sweep-map")
    assert heatmap["x"] == ["0.01", "0.1"] and heatmap["y"] == ["0", "0.9"]  # lr × μ
    runs = httpx.get(f"{service}{API}/runs", params={"sweep_id": sweep["id"]}).json()["items"]
    values = tail_means(service, [run["id"] for run in runs])
    for i, momentum in enumerate([0.0, 0.9]):
        for j, lr in enumerate([0.01, 0.1]):
            cell = [values[r["id"]] for r in runs if r["params"]["momentum"] == momentum
                    and r["params"]["lr"] == lr]  # fmt: skip
            assert heatmap["z"][i][j] == pytest.approx(sum(cell) / 2)  # mean of two seeds
    assert "μ=0.9, lr=0.1" in heatmap["text"][1][1] and "seed" not in heatmap["text"][1][1]
    step = chart(page, "sweep-step")
    expected = sorted(r["params"]["lr"] / (1 - r["params"]["momentum"]) for r in runs)
    assert sorted(step["x"]) == pytest.approx(expected)
    assert page.evaluate("document.getElementById('sweep-step').layout.xaxis.type") == "log"
    assert page.locator("#sweep-parcoords").is_hidden()  # two params: no parallel coordinates
    wait_for_function(page, "document.getElementById('sweep-verdict').textContent.length > 0")
    common = page.locator("#sweep-common").inner_text()
    assert "dataset=ravine" in common and "lr=" not in common and "μ=" not in common
    bundles = page.evaluate("[...document.scripts].map((s) => s.src.split('/').pop())")
    assert "plotly-cartesian.min.js" in bundles and "plotly-strict.min.js" not in bundles


def test_a_three_param_sweep_draws_parallel_coordinates(service: str, opened: Opened) -> None:
    grid = {"momentum": [0.5, 0.9], "lr": [0.01, 0.1], "weight_decay": [0.0, 0.001]}
    sweep = seeded_sweep(service, "three-params", grid)
    page = opened.page
    page.goto(f"{service}/?view=sweep&sweep={sweep['id']}")
    wait_for_trace(page, "sweep-parcoords", "parcoords")
    page.locator("#sweep-parcoords canvas").first.wait_for()
    wait_for_function(
        page, "document.querySelectorAll('#sweep-parcoords .axis-title').length === 4"
    )
    parcoords = chart(page, "sweep-parcoords")
    labels = [d["label"] for d in parcoords["dimensions"]]
    assert labels == ["μ", "lr", "weight_decay", "tail_mean loss"]
    runs = httpx.get(f"{service}{API}/runs", params={"sweep_id": sweep["id"]}).json()["items"]
    values = tail_means(service, [run["id"] for run in runs])
    assert sorted(parcoords["dimensions"][3]["values"]) == pytest.approx(sorted(values.values()))
    assert page.locator("#sweep-map").is_hidden()
    wait_for_trace(page, "sweep-step", "scatter")  # all three: μ and lr still couple
    # Drawn by the strict bundle; the page's Plotly stays the basic one.
    traces = page.evaluate("Object.keys(Plotly.PlotSchema.get().traces).sort()")
    assert traces == ["bar", "pie", "scatter"]


def test_a_refused_request_is_shown_as_an_error_never_as_a_verdict(
    service: str, opened: Opened
) -> None:
    sweep = seeded_sweep(service, "refused", {"momentum": [0.0, 0.9]})
    page = opened.page
    opened.expected.append("status of 422")
    page.goto(f"{service}/?view=sweep&sweep={sweep['id']}&by=not%20a%20param")
    error = page.locator("#sweep-error")
    error.wait_for()
    assert "by" in error.inner_text()
    assert page.locator("#sweep-verdict").is_hidden()
    assert page.locator("#sweep-verdict").text_content() == ""
    colour = error.evaluate("node => getComputedStyle(node).color")
    assert colour == "rgb(185, 28, 28)"  # --bad, not the verdict's green
    assert error.get_attribute("role") == "alert"


def test_many_runs_are_coloured_by_the_swept_param_and_named_by_what_differs(
    service: str, opened: Opened
) -> None:
    """12 runs (μ ∈ {0, 0.5, 0.9} × 4 seeds, one lr): one legend entry and one colour per
    μ (their runs drawn as one trace), each run named on hover by what differs; the rest
    said once, above."""
    sweep = seeded_sweep(service, "many", {"momentum": [0.0, 0.5, 0.9], "seed": [0, 1, 2, 3]})
    runs = httpx.get(f"{service}{API}/runs", params={"sweep_id": sweep["id"]}).json()["items"]
    ids = ",".join(str(run["id"]) for run in runs)
    page = opened.page
    page.goto(f"{service}/?view=compare&runs={ids}&keys=loss")
    wait_for_function(
        page,
        """() => document.getElementById('chart-loss')?.data
            ?.filter((t) => t.meta.role === 'main').length === 3""",
    )
    legend = page.locator("#chart-loss .legendtext").all_text_contents()
    assert legend == ["μ=0", "μ=0.5", "μ=0.9"]
    traces = page.evaluate(
        """() => document.getElementById('chart-loss').data
            .filter((t) => t.meta.role === 'main')
            .map((t) => ({runs: t.meta.run_ids, colour: t.line.color, x: Array.from(t.x),
                          hover: Array.from(t.text)}))"""
    )
    by_run = {run["id"]: run for run in runs}
    assert len({trace["colour"] for trace in traces}) == 3
    for trace in traces:
        assert len({by_run[run]["params"]["momentum"] for run in trace["runs"]}) == 1
        assert len(trace["runs"]) == 4
        assert len(trace["x"]) == 4 * 40 + 3  # four runs' points, a gap between each two
        names = {text for text in trace["hover"] if text}
        expected = {
            f"{by_run[run]['name']} (μ={by_run[run]['params']['momentum']:g}, "
            f"seed={by_run[run]['params']['seed']})"
            for run in trace["runs"]
        }
        assert names == expected
    common = page.locator("#compare-common").inner_text()
    assert "lr=0.05" in common and "dataset=ravine" in common
    wait_for_function(page, "document.querySelectorAll('#summary-table tbody tr').length === 12")
    header = page.locator("#summary-table thead th").all_text_contents()
    assert header[:4] == ["Rank", "Run", "μ", "seed"] and "lr" not in header


def test_a_compare_view_of_more_than_100_runs_draws_with_webgl(
    service: str, opened: Opened
) -> None:
    momenta = [round(i / 101, 4) for i in range(101)]
    sweep = seeded_sweep(service, "webgl", {"momentum": momenta})
    listed = httpx.get(f"{service}{API}/runs", params={"sweep_id": sweep["id"], "limit": 200})
    ids = ",".join(str(run["id"]) for run in listed.json()["items"])
    page = opened.page
    page.goto(f"{service}/?view=compare&runs={ids}&keys=loss")
    wait_for_function(
        page,
        """() => document.getElementById('chart-loss')?.data
            ?.filter((t) => t.meta.role === 'main').length === 101""",
        timeout=60_000,
    )
    types = page.evaluate(
        "[...new Set(document.getElementById('chart-loss').data.map((t) => t.type))]"
    )
    assert types == ["scattergl"]
    page.locator("#chart-loss canvas").first.wait_for()
    # 101 values: no legend entry each, one colour bar from the lowest μ to the highest.
    assert page.locator("#chart-loss .legendtext").count() == 0
    page.locator("#chart-loss .colorbar").wait_for()
    bar = page.evaluate(
        """() => document.getElementById('chart-loss').data
            .find((t) => t.meta.role === 'colourbar').marker"""
    )
    assert (bar["cmin"], bar["cmax"]) == (0, 0.9901)
