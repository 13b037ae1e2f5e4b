"""Comparison benchmark against the real service (issue 5's targets).

Starts `momentum serve` (SQLite in a fresh data dir; PostgreSQL with --database-url or
--throwaway-postgres), logs --runs runs x --steps steps x 2 keys (loss, accuracy) and a
sweep of 8 runs (momentum 4 x seed 2) x 2,000 steps, then times over HTTP (median of
--repeat, after one warm-up call):
  1. compare, 10 runs of loss, max_points=1000                 target <= 150 ms (SQLite)
  2. the same with smoothing=0.6 (EMA at full resolution)      target <= 600 ms
  3. compare of both keys (2 x the points), with and without smoothing
  4. summary of the 10 runs (threshold, baseline)
  5. groups of the 10 runs by momentum
  6. the sweep summary, 8 runs x 2,000 steps                   target <= 100 ms
  7. export.csv of 10,000 points at dense steps and at sparse ones (i * 2**63 // 10**4):
     the sparse one should cost about what the dense one does
  8. the verdict of a 256-run sweep (MOMENTUM_MAX_GRID_SIZE: momentum 4 x seed 64) x
     --verdict-steps steps of loss                              target <= 300 ms
With --many (issue 19's targets) it times many runs instead: compare of 100 runs x
100,000 points of loss, max_points=1000 (target <= 150 ms on SQLite), summary and groups
of those 100 runs, and summary and groups of 256 runs x 2,000 steps (a sweep of
MOMENTUM_MAX_GRID_SIZE runs); --server-code DIR runs the service from another checkout
(e.g. the main branch) on the same data for an old-vs-new table.

    python bench/compare.py
    python bench/compare.py --throwaway-postgres
    python bench/compare.py --runs 4 --steps 20000   # a quick look
    python bench/compare.py --many                   # 100 runs x 100,000; 256 runs
    python bench/compare.py --many --server-code /path/to/main   # the same, older code
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.backend import add_database_arguments, benchmark_database  # noqa: E402
from bench.ingest import send_all  # noqa: E402
from tests.support import live_server  # noqa: E402

BATCH = 10_000
MOMENTA = (0.0, 0.5, 0.9, 0.99)


def batches(steps: int, speed: float) -> list[bytes]:
    """loss and accuracy per step; a higher `speed` reaches low loss sooner."""
    out, points = [], []
    now = time.time()
    for step in range(steps):
        loss = 2.3 / (1 + speed * step * 1e-3) + 0.01 * ((step * 7919) % 13) / 13
        accuracy = 1 - loss / 2.4
        for key, value in (("loss", loss), ("accuracy", accuracy)):
            points.append({"key": key, "step": step, "value": value, "wall_time": now + step})
        if len(points) >= BATCH:
            out.append(orjson.dumps({"points": points}))
            points = []
    if points:
        out.append(orjson.dumps({"points": points}))
    return out


def make_runs(
    http: httpx.Client,
    base_url: str,
    count: int,
    steps: int,
    encode: Callable[[int, float], list[bytes]] = batches,
) -> list[int]:
    """`count` runs of `steps` steps as `encode` makes them, momentum cycling MOMENTA."""
    bodies = {m: encode(steps, 1 + 10 * m) for m in MOMENTA}
    ids = []
    for index in range(count):
        momentum = MOMENTA[index % len(MOMENTA)]
        params = {"optimizer": "momentum", "momentum": momentum, "seed": index // len(MOMENTA)}
        body = {"name": f"bench-{index}", "params": params}
        run_id = int(http.post("/api/v1/runs", json=body).raise_for_status().json()["id"])
        send_all(base_url, run_id, bodies[momentum])
        ids.append(run_id)
    return ids


def make_sweep(http: httpx.Client, base_url: str, steps: int) -> int:
    base = {"dataset": "ravine", "model": "linear", "steps": steps}
    body = {"name": "bench", "base": base, "grid": {"momentum": [*MOMENTA], "seed": [0, 1]}}
    sweep = http.post("/api/v1/sweeps", json=body).raise_for_status().json()
    jobs = http.get("/api/v1/jobs", params={"sweep_id": sweep["id"]}).raise_for_status().json()
    for job in jobs["items"]:
        speed = 1 + 10 * job["config"]["momentum"]
        send_all(base_url, job["run_id"], batches(steps, speed))
    return int(sweep["id"])


VERDICT_SEEDS = 64  # x 4 momenta: a sweep of MOMENTUM_MAX_GRID_SIZE (256) runs


def big_sweep_verdict(http: httpx.Client, base_url: str, steps: int) -> tuple[str, str, dict, str]:
    """A 256-run sweep (loss only) and the case that times its verdict."""
    base = {"dataset": "ravine", "model": "linear", "steps": steps}
    grid = {"momentum": [*MOMENTA], "seed": list(range(VERDICT_SEEDS))}
    body = {"name": "bench-verdict", "base": base, "grid": grid}
    sweep = http.post("/api/v1/sweeps", json=body).raise_for_status().json()
    jobs = http.get("/api/v1/jobs", params={"sweep_id": sweep["id"], "limit": 1000})
    for job in jobs.raise_for_status().json()["items"]:
        speed = 1 + 10 * job["config"]["momentum"] + 0.01 * (job["config"]["seed"] % 7)
        loss_only = [
            orjson.dumps(
                {"points": [p for p in orjson.loads(batch)["points"] if p["key"] == "loss"]}
            )
            for batch in batches(steps, speed)
        ]
        send_all(base_url, job["run_id"], loss_only)
    label = f"verdict of a sweep, {len(jobs.json()['items'])} runs x {steps:,} (loss)"
    return label, f"/sweeps/{sweep['id']}/verdict", {"key": "loss"}, "<= 300"


EXPORT_POINTS = 10_000


def make_export_runs(http: httpx.Client, base_url: str) -> tuple[int, int]:
    """Two runs of 10,000 loss points: steps 0..9,999, and steps spread over all of int64."""
    ids = []
    for name, gap in (("dense", 1), ("sparse", 2**63 // EXPORT_POINTS)):
        run = http.post("/api/v1/runs", json={"name": f"export-{name}"}).raise_for_status()
        points = [{"key": "loss", "step": i * gap, "value": 1.0} for i in range(EXPORT_POINTS)]
        send_all(base_url, run.json()["id"], [orjson.dumps({"points": points})])
        ids.append(int(run.json()["id"]))
    return ids[0], ids[1]


def timed(
    http: httpx.Client, path: str, params: dict[str, object], repeat: int
) -> tuple[list[float], int]:
    http.get(path, params=params).raise_for_status()  # warm-up
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = http.get(path, params=params).raise_for_status()
        timings.append((time.perf_counter() - started) * 1000)
    return timings, len(response.content)


def measure(args: argparse.Namespace, database_url: str, data_dir: Path) -> Table:
    env = {"MOMENTUM_DATABASE_URL": database_url, "MOMENTUM_DATA_DIR": str(data_dir)}
    os.environ.update(env)
    from service.migrate import upgrade
    from service.settings import Settings

    upgrade(Settings())
    with live_server(env) as base_url, httpx.Client(base_url=base_url, timeout=120) as http:
        started = time.perf_counter()
        run_ids = make_runs(http, base_url, args.runs, args.steps)
        sweep_id = make_sweep(http, base_url, args.sweep_steps)
        dense, sparse = make_export_runs(http, base_url)
        verdict_case = big_sweep_verdict(http, base_url, args.verdict_steps)
        loading_s = time.perf_counter() - started
        ids = ",".join(str(run_id) for run_id in run_ids)
        n, steps = args.runs, f"{args.steps:,}"
        loss = {"run_ids": ids, "keys": "loss", "max_points": 1000}
        both = {**loss, "keys": "loss,accuracy"}
        summary = {"run_ids": ids, "key": "loss", "threshold": 0.5, "baseline": run_ids[0]}
        cases = [
            (f"compare {n} runs x {steps} (loss), max_points=1000", "/compare", loss, "<= 150"),
            ("  the same, smoothing=0.6", "/compare", {**loss, "smoothing": 0.6}, "<= 600"),
            (f"compare {n} runs x {steps} x 2 keys, max_points=1000", "/compare", both, ""),
            ("  the same, smoothing=0.6", "/compare", {**both, "smoothing": 0.6}, ""),
            (f"summary {n} runs x {steps} (loss, threshold)", "/compare/summary", summary, ""),
            (
                f"groups {n} runs x {steps} by momentum",
                "/compare/groups",
                {"run_ids": ids, "key": "loss", "by": "momentum", "threshold": 0.5},
                "",
            ),
            (
                f"sweep summary, 8 runs x {args.sweep_steps:,} (loss)",
                f"/sweeps/{sweep_id}/summary",
                {"key": "loss", "threshold": 0.5},
                "<= 100",
            ),
            ("export.csv, 10,000 dense steps", "/export.csv", {"run_ids": dense}, ""),
            ("export.csv, 10,000 sparse steps", "/export.csv", {"run_ids": sparse}, "~ dense"),
        ]
        cases.append(verdict_case)
        rows = []
        for label, path, params, target in cases:
            timings, size = timed(http, f"/api/v1{path}", params, args.repeat)
            rows.append((label, timings, size, target))

    backend = "SQLite" if database_url.startswith("sqlite") else "PostgreSQL"
    table = Table(
        title=f"Momentum Monitor comparisons ({backend}, one server process; "
        f"median of {args.repeat}; data loaded in {loading_s:.0f} s)"
    )
    for column in ("request", "median ms", "min ms", "max ms", "response", "target ms"):
        table.add_column(column, justify="left" if column == "request" else "right")
    for label, timings, size, target in rows:
        table.add_row(
            label,
            f"{statistics.median(timings):.1f}",
            f"{min(timings):.1f}",
            f"{max(timings):.1f}",
            f"{size / 1024:.0f} KB",
            target,
        )
    return table


def loss_batches(steps: int, speed: float) -> list[bytes]:
    """The loss of `batches`, alone: a many-run benchmark loads half the points."""
    out = []
    for body in batches(steps, speed):
        points = [p for p in orjson.loads(body)["points"] if p["key"] == "loss"]
        out.append(orjson.dumps({"points": points}))
    return out


def timed_or_refused(
    http: httpx.Client, path: str, params: dict[str, object], repeat: int
) -> tuple[list[float], int] | str:
    """`timed`, or the refusal (status and message) a server answers instead."""
    answer = http.get(path, params=params)
    if answer.status_code != 200:
        return f"refused {answer.status_code}: {answer.json()['error']['message'][:60]}"
    return timed(http, path, params, repeat)


def many_run_cases(many: list[int], sweep: list[int]) -> list[tuple[str, str, dict[str, Any]]]:
    ids, sweep_ids = ",".join(map(str, many)), ",".join(map(str, sweep))
    n, m = len(many), len(sweep)
    grouped = {"key": "loss", "by": "momentum", "threshold": 0.5}
    return [
        (f"compare {n} runs (loss), max_points=1000", "/compare",
         {"run_ids": ids, "keys": "loss", "max_points": 1000}),
        (f"summary of the {n} runs (threshold)", "/compare/summary",
         {"run_ids": ids, "key": "loss", "threshold": 0.5}),
        (f"groups of the {n} runs by momentum", "/compare/groups", {"run_ids": ids, **grouped}),
        (f"summary of {m} runs x 2,000 (a full sweep)", "/compare/summary",
         {"run_ids": sweep_ids, "key": "loss", "threshold": 0.5}),
        (f"groups of {m} runs x 2,000 by momentum", "/compare/groups",
         {"run_ids": sweep_ids, **grouped}),
    ]  # fmt: skip


def measure_many(args: argparse.Namespace, database_url: str, data_dir: Path) -> Table:
    """Issue 19's many-run rows, against the service from --server-code if given."""
    env = {"MOMENTUM_DATABASE_URL": database_url, "MOMENTUM_DATA_DIR": str(data_dir)}
    os.environ.update(env)
    from service.migrate import upgrade
    from service.settings import Settings

    upgrade(Settings())
    if args.server_code:  # `python -m momentum.cli` imports from its working directory first
        env["PYTHONPATH"] = str(Path(args.server_code).resolve())
        os.chdir(env["PYTHONPATH"])
    with (
        live_server(env, timeout=120) as base_url,
        httpx.Client(base_url=base_url, timeout=300) as http,
    ):
        started = time.perf_counter()
        many = make_runs(http, base_url, args.runs, args.steps, loss_batches)
        sweep = make_runs(http, base_url, args.sweep_runs, 2_000, loss_batches)
        loading_s = time.perf_counter() - started
        results = [
            (label, timed_or_refused(http, f"/api/v1{path}", params, args.repeat))
            for label, path, params in many_run_cases(many, sweep)
        ]
    code = args.server_code or "this checkout"
    table = Table(
        title=f"Many runs, x {args.steps:,} steps ({code}; median of {args.repeat}; "
        f"data loaded in {loading_s:.0f} s)"
    )
    for column in ("request", "median ms", "min ms", "max ms", "response"):
        table.add_column(column, justify="left" if column == "request" else "right")
    for label, result in results:
        if isinstance(result, str):
            table.add_row(label, result, "", "", "")
            continue
        timings, size = result
        median, low, high = statistics.median(timings), min(timings), max(timings)
        table.add_row(label, f"{median:.1f}", f"{low:.1f}", f"{high:.1f}", f"{size / 1024:.0f} KB")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    add_database_arguments(parser)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--sweep-steps", type=int, default=2_000)
    parser.add_argument("--verdict-steps", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--many", action="store_true", help="issue 19's many-run rows")
    parser.add_argument("--sweep-runs", type=int, default=256, help="runs of --many's sweep")
    parser.add_argument("--server-code", help="serve from this checkout's code (with --many)")
    args = parser.parse_args()
    if args.many and "--runs" not in sys.argv:
        args.runs = 100

    with benchmark_database(args, prefix="momentum-bench-") as (database_url, data_dir):
        table = (measure_many if args.many else measure)(args, database_url, data_dir)
    Console(width=max(120, Console().width)).print(table)


if __name__ == "__main__":
    main()
