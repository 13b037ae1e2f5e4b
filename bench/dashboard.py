"""Dashboard benchmark (issue 6's target): from navigation to both charts drawn.

Starts `momentum serve` on a fresh SQLite file, logs --runs runs x --steps steps x 2 keys
(loss, accuracy), then opens the compare view of all of them in Debian's headless
Chromium (Playwright, as the tests do) and times, --repeat times in fresh browser
contexts, from navigation start (the page's own clock, performance.now()) until both
charts hold a trace per run. Target: <= 1.5 s for 10 runs x 100,000 steps. Saves a
screenshot of the last load.

    python bench/dashboard.py
    python bench/dashboard.py --runs 4 --steps 20000   # a quick look
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.compare import make_runs  # noqa: E402
from tests.browser import chromium  # noqa: E402
from tests.support import live_server  # noqa: E402

BOTH_CHARTS_DRAWN = """count => ["loss", "accuracy"].every(key => {
    const chart = document.getElementById(`chart-${key}`);
    return chart?.data?.filter(t => t.meta.role === "main").length === count
        && chart.querySelector(".scatterlayer .trace") !== null;
})"""


def time_loads(url: str, runs: int, repeat: int, screenshot: Path) -> list[float]:
    timings = []
    with chromium() as browser:
        for attempt in range(repeat + 1):  # the first load warms the server's caches
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.goto(url)
            page.wait_for_function(BOTH_CHARTS_DRAWN, arg=runs, timeout=60_000, polling="raf")
            drawn_ms = page.evaluate("performance.now()")
            if attempt:
                timings.append(drawn_ms)
            if attempt == repeat:
                page.screenshot(path=str(screenshot), full_page=True)
            context.close()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
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
    with live_server(env) as base_url, httpx.Client(base_url=base_url, timeout=120) as http:
        started = time.perf_counter()
        run_ids = make_runs(http, base_url, args.runs, args.steps)
        loading_s = time.perf_counter() - started
        ids = ",".join(str(run_id) for run_id in run_ids)
        page_url = f"{base_url}/?view=compare&runs={ids}&keys=loss,accuracy"
        timings = time_loads(page_url, args.runs, args.repeat, args.screenshot)
    table = Table(title=f"Dashboard, {args.runs} runs x {args.steps:,} steps x 2 keys (SQLite)")
    for column in ("measure", "median ms", "min ms", "max ms", "target"):
        table.add_column(column)
    table.add_row(
        "navigation -> both charts drawn",
        f"{statistics.median(timings):.0f}",
        f"{min(timings):.0f}",
        f"{max(timings):.0f}",
        "<= 1500",
    )
    console = Console()
    console.print(table)
    console.print(f"data logged in {loading_s:.1f} s; screenshot: {args.screenshot}")


if __name__ == "__main__":
    main()
