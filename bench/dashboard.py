"""Dashboard benchmark (issue 6's and issue 19's targets): from navigation to everything drawn.

Starts `momentum serve` on a fresh SQLite file, logs --runs runs x --steps steps x 2 keys
(loss, accuracy), then opens the compare view of all of them in Debian's headless
Chromium (Playwright, as the tests do) and times, --repeat times each, from navigation
start (the page's own clock, performance.now()) until both charts hold a trace per run.
With --view sweep it logs a sweep of --runs runs instead (μ x lr x seed, all four seeds
of each setting; 256 by default is MOMENTUM_MAX_GRID_SIZE) and times the sweep view until
its verdict, interval chart, heatmap, effective-step-size chart, bands and table are all
there. Rows:
- a first visit (a fresh browser context: empty cache, nothing compiled), with the
  Plotly.js bundle the service serves (the basic one once `npm ci --prefix service/vendor`
  ran), and, interleaved in the same run for comparison, with the full bundle that the
  `plotly` Python package ships (swapped in by the browser, the service unchanged);
- a repeat visit (reload in the same context: the bundle and its compiled code cached).
Each row also says when Plotly was ready and when the curves had arrived. Target: <= 1.5 s
for 10 runs x 100,000 steps, and for the compare view of 100 runs and the sweep view of a
256-run sweep (issue 19). Saves a screenshot of the last load.

    python bench/dashboard.py
    python bench/dashboard.py --runs 100                        # the compare view of 100 runs
    python bench/dashboard.py --view sweep --runs 256 --steps 2000
    python bench/dashboard.py --runs 4 --steps 20000   # a quick look
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from playwright.sync_api import Browser, Page, Route
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.compare import batches, make_runs  # noqa: E402
from bench.ingest import send_all  # noqa: E402
from tests.browser import chromium, wait_for_function  # noqa: E402
from tests.support import live_server  # noqa: E402

BOTH_CHARTS_DRAWN = """count => ["loss", "accuracy"].every(key => {
    const chart = document.getElementById(`chart-${key}`);
    // Many runs share a trace per swept value (meta.run_ids): count the runs drawn.
    return chart?.data?.filter(t => t.meta.role === "main")
        .reduce((runs, t) => runs + (t.meta.run_ids?.length ?? 1), 0) === count
        && chart.querySelector(".scatterlayer .trace") !== null;
})"""
# Notes when the page's Plotly global appears: the moment the bundle has run.
MARK_PLOTLY_READY = """{
    let plotly;
    Object.defineProperty(window, "Plotly", {
        configurable: true,
        get: () => plotly,
        set: (value) => { window.plotlyReadyMs ??= performance.now(); plotly = value; },
    });
}"""
CURVES_ARRIVED = """performance.getEntriesByType("resource")
    .filter(e => e.name.includes("/api/v1/compare?")).map(e => e.responseEnd)[0] ?? null"""
SWEEP_DRAWN = """count => {
    const drawn = (id, type) => document.getElementById(id)?.data?.[0]?.type === type
        && document.querySelector(`#${id} .main-svg`) !== null;
    return document.getElementById("sweep-verdict").textContent.length > 0
        && drawn("sweep-final", "scatter") && drawn("sweep-map", "heatmap")
        && drawn("sweep-step", "scatter") && drawn("sweep-bands", "scatter")
        && document.getElementById("sweep-step").data[0].x.length === count
        && document.querySelectorAll("#sweep-table tbody tr").length > 0;
}"""
VERDICT_ARRIVED = """performance.getEntriesByType("resource")
    .filter(e => e.name.includes("/verdict?")).map(e => e.responseEnd)[0] ?? null"""


@dataclass
class Loads:
    drawn_ms: list[float] = field(default_factory=list)
    plotly_ready_ms: list[float] = field(default_factory=list)
    curves_ms: list[float] = field(default_factory=list)

    def record(self, page: Page, view: str) -> None:
        self.drawn_ms.append(page.evaluate("performance.now()"))
        self.plotly_ready_ms.append(page.evaluate("window.plotlyReadyMs"))
        arrived = CURVES_ARRIVED if view == "compare" else VERDICT_ARRIVED
        self.curves_ms.append(page.evaluate(arrived))


def full_bundle() -> bytes:
    from service.api.dashboard import _full_plotly_path

    return _full_plotly_path().read_bytes()


def open_and_wait(page: Page, url: str, runs: int, view: str) -> None:
    page.goto(url)
    # Not Playwright's own wait_for_function: it evals, which the page's policy refuses.
    drawn = BOTH_CHARTS_DRAWN if view == "compare" else SWEEP_DRAWN
    wait_for_function(page, drawn, arg=runs, timeout=60_000)


def time_loads(
    browser: Browser, url: str, args: argparse.Namespace, screenshot: Path
) -> dict[str, Loads]:
    runs, repeat, view = args.runs, args.repeat, args.view
    loads = {
        "first visit, served bundle": Loads(),
        "first visit, full bundle": Loads(),
        "repeat visit, served bundle": Loads(),
    }
    full = full_bundle()

    def serve_full(route: Route) -> None:
        route.fulfill(body=full, content_type="text/javascript")

    for attempt in range(repeat + 1):  # the first round warms the server's caches
        for swap in (False, True):
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.add_init_script(MARK_PLOTLY_READY)
            if swap:
                context.route("**/vendor/plotly.min.js", serve_full)
            page = context.new_page()
            open_and_wait(page, url, runs, view)
            if attempt:
                name = "first visit, full bundle" if swap else "first visit, served bundle"
                loads[name].record(page, view)
            if not swap:
                open_and_wait(page, url, runs, view)
                if attempt:
                    loads["repeat visit, served bundle"].record(page, view)
                if attempt == repeat:
                    page.screenshot(path=str(screenshot), full_page=True)
            context.close()
    return loads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--view", choices=["compare", "sweep"], default="compare")
    parser.add_argument(
        "--screenshot", type=Path, default=Path(tempfile.gettempdir()) / "dashboard-bench.png"
    )
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="momentum-dashboard-bench-"))
    database_url = f"sqlite:///{data_dir / 'momentum.sqlite3'}"
    env = {"MOMENTUM_DATABASE_URL": database_url, "MOMENTUM_DATA_DIR": str(data_dir)}
    os.environ.update(env)
    from service.migrate import upgrade
    from service.settings import Settings

    upgrade(Settings())
    with (
        live_server(env, timeout=120) as base_url,
        httpx.Client(base_url=base_url, timeout=120) as http,
    ):
        started = time.perf_counter()
        if args.view == "compare":
            run_ids = make_runs(http, base_url, args.runs, args.steps)
            ids = ",".join(str(run_id) for run_id in run_ids)
            page_url = f"{base_url}/?view=compare&runs={ids}&keys=loss,accuracy"
        else:
            sweep_id = make_big_sweep(http, base_url, args.runs, args.steps)
            page_url = f"{base_url}/?view=sweep&sweep={sweep_id}&key=loss"
        loading_s = time.perf_counter() - started
        with chromium() as browser:
            loads = time_loads(browser, page_url, args, args.screenshot)
    console = Console(width=140)
    console.print(_table(loads, args))
    console.print(f"data logged in {loading_s:.1f} s; screenshot: {args.screenshot}")


def make_big_sweep(http: httpx.Client, base_url: str, runs: int, steps: int) -> int:
    """A sweep of `runs` runs: μ x lr x 4 seeds, each run's points posted (no training)."""
    side = max(1, round(math.sqrt(runs / 4)))
    momenta = [round(0.99 * i / max(1, side - 1), 4) for i in range(side)]
    rates = [round(10 ** (-3 + 3 * i / max(1, side - 1)), 6) for i in range(runs // 4 // side)]
    grid = {"momentum": momenta, "lr": rates, "seed": [0, 1, 2, 3]}
    base = {"dataset": "ravine", "model": "linear", "steps": steps}
    body = {"name": "bench-sweep", "base": base, "grid": grid}
    sweep = http.post("/api/v1/sweeps", json=body).raise_for_status().json()
    for job_id in sweep["job_ids"]:
        job = http.get(f"/api/v1/jobs/{job_id}").raise_for_status().json()
        config = job["config"]
        ridge = 1 / (1 + abs(math.log10(config["lr"] / (1 - config["momentum"]) / 0.3)))
        send_all(base_url, job["run_id"], batches(steps, speed=10 * ridge + config["seed"] / 10))
    return int(sweep["id"])


def _table(loads: dict[str, Loads], args: argparse.Namespace) -> Table:
    what = "runs" if args.view == "compare" else "runs of one sweep"
    title = (
        f"Dashboard, {args.view} view of {args.runs} {what} x {args.steps:,} steps x 2 keys "
        f"(SQLite), median of {args.repeat} loads each"
    )
    table = Table(title=title)
    for column in (
        "load",
        "all drawn ms",
        "min",
        "max",
        "Plotly ready ms",
        "curves (compare) or verdict (sweep) arrived ms",
        "target",
    ):
        table.add_column(column, justify="left" if column == "load" else "right")
    for name, timed in loads.items():
        drawn = timed.drawn_ms
        table.add_row(
            name,
            f"{statistics.median(drawn):.0f}",
            f"{min(drawn):.0f}",
            f"{max(drawn):.0f}",
            f"{statistics.median(timed.plotly_ready_ms):.0f}",
            f"{statistics.median(timed.curves_ms):.0f}",
            "<= 1500" if name.startswith("first visit, served") else "",
        )
    return table


if __name__ == "__main__":
    main()
