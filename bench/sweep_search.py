"""Adaptive sweeps measured: a grid trained to the end against random + ASHA and TPE + ASHA.

The issue's question (#18, "Measured, not asserted"): over the digits MLP, μ ∈ [0, 0.99]
× lr ∈ [1e-3, 1] (log), how close does each search come to the grid's best objective,
and for how many training steps? Starts the real service (`momentum serve` on a fresh
SQLite file, loopback) and --workers real `momentum worker` processes, then runs, one
after the other in this one invocation:

- grid: 6 × 6 (μ evenly over [0, 0.99], lr log-spaced over [1e-3, 1]), every run to the end;
- random + ASHA and TPE + ASHA, --max-jobs trials each, once per search seed (--seeds).

Prints per sweep: trials, runs stopped early, steps spent (the sweep's `steps_spent`,
the sum of the steps its runs logged), that as a share of the grid's, the best
objective, its gap to the grid's best, and the wall time; then the mean per strategy
and whether TPE + ASHA met the target (within 5 % of the grid's best objective with at
most a third of the grid's steps).

    python bench/sweep_search.py                  # 300 steps a run, 3 seeds: 5-15 minutes
    python bench/sweep_search.py --steps 200 --seeds 1 --max-jobs 10   # a quick look

The grid is trained once (it has no seed to vary); the searches once per seed. Wall
times depend on what else the machine runs; steps do not.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.support import live_server  # noqa: E402

API = "/api/v1"
TARGET_GAP = 0.05
TARGET_SHARE = 1 / 3
POLL_S = 0.5


@dataclass
class Outcome:
    strategy: str
    seed: int | None
    trials: int
    stopped: int
    steps: int
    best: float | None
    wall_s: float


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300, help="Steps per run (default 300).")
    parser.add_argument("--eval-every", type=int, default=25, help="Steps between val_loss.")
    parser.add_argument("--seeds", type=int, default=3, help="Search seeds per strategy.")
    parser.add_argument("--max-jobs", type=int, default=30, help="Budget of each search.")
    parser.add_argument("--parallelism", type=int, default=4)
    parser.add_argument("--min-step", type=int, default=25, help="ASHA's first rung.")
    parser.add_argument("--reduction-factor", type=int, default=3)
    parser.add_argument("--objective", default="val_loss", help="Key; minimised, tail_mean.")
    parser.add_argument("--workers", type=int, default=2, help="Worker processes.")
    parser.add_argument("--timeout", type=float, default=1800, help="Seconds per sweep at most.")
    return parser.parse_args()


def base(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "dataset": "digits", "model": "mlp", "optimizer": "sgd_momentum",
        "steps": args.steps, "eval_every": args.eval_every, "log_every": 1,
        "device": "cpu", "seed": 0,
    }  # fmt: skip


def grid_body(args: argparse.Namespace) -> dict[str, Any]:
    momentum = [round(float(m), 4) for m in np.linspace(0.0, 0.99, 6)]
    lr = [round(float(v), 6) for v in np.geomspace(1e-3, 1.0, 6)]
    return {
        "name": "bench grid 6x6",
        "base": base(args),
        "grid": {"momentum": momentum, "lr": lr},
        "objective": {"key": args.objective, "mode": "min", "summary": "tail_mean"},
        "parallelism": max(args.parallelism, args.workers),
    }


def search_body(args: argparse.Namespace, strategy: str, seed: int) -> dict[str, Any]:
    return {
        "name": f"bench {strategy} + asha seed {seed}",
        "base": base(args),
        "strategy": strategy,
        "space": {
            "momentum": {"type": "float", "low": 0.0, "high": 0.99},
            "lr": {"type": "float", "low": 1e-3, "high": 1.0, "log": True},
        },
        "max_jobs": args.max_jobs,
        "parallelism": args.parallelism,
        "search_seed": seed,
        "objective": {"key": args.objective, "mode": "min", "summary": "tail_mean"},
        "early_stop": {
            "rule": "asha",
            "min_step": args.min_step,
            "reduction_factor": args.reduction_factor,
        },
    }


def start_workers(url: str, count: int, directory: Path) -> list[subprocess.Popen[bytes]]:
    processes = []
    for index in range(count):
        argv = [sys.executable, "-m", "momentum.cli", "worker", "--url", url]
        argv += ["--worker-id", f"bench-{index}", "--device", "cpu", "--threads", "1"]
        argv += ["--no-progress"]
        env = {**os.environ, "MOMENTUM_SPOOL_DIR": str(directory / f"spool-{index}")}
        env.pop("MOMENTUM_TOKEN", None)
        log = (directory / f"worker-{index}.log").open("wb")
        processes.append(subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT))
    return processes


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_sweep(client: httpx.Client, body: dict[str, Any], timeout: float) -> Outcome:
    started = time.perf_counter()
    response = client.post("/sweeps", json=body)
    response.raise_for_status()
    sweep_id = response.json()["id"]
    deadline = time.monotonic() + timeout
    while True:
        sweep = client.get(f"/sweeps/{sweep_id}").json()
        done = sweep["trials"] >= sweep["max_jobs"] and sweep["status"] not in ("queued", "running")
        if done:
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"sweep {sweep_id} did not finish within {timeout:.0f} s: {sweep}")
        time.sleep(POLL_S)
    wall = time.perf_counter() - started
    jobs = client.get("/jobs", params={"sweep_id": sweep_id, "limit": 1000}).json()["items"]
    stopped = sum(1 for job in jobs if job.get("early_stopped"))
    best = sweep["best"]["objective"] if sweep.get("best") else None
    seed = body.get("search_seed")
    strategy = body.get("strategy", "grid")
    label = "grid 6x6" if strategy == "grid" else f"{strategy} + asha"
    return Outcome(label, seed, sweep["trials"], stopped, sweep["steps_spent"], best, wall)


def gap(best: float | None, reference: float | None) -> str:
    if best is None or reference is None or reference == 0:
        return "-"
    return f"{(best - reference) / abs(reference) * 100:+.1f} %"


def table(outcomes: list[Outcome], args: argparse.Namespace) -> Table:
    grid = outcomes[0]
    title = (
        f"digits MLP, {args.steps} steps/run, objective {args.objective} (tail_mean, min); "
        f"searches: {args.max_jobs} trials, parallelism {args.parallelism}, ASHA min_step "
        f"{args.min_step}, rf {args.reduction_factor}; {args.workers} workers"
    )
    out = Table(title=title, title_justify="left")
    for column in ("strategy", "seed", "trials", "stopped", "steps", "of grid", "best",
                   "vs grid best", "wall s"):  # fmt: skip
        out.add_column(column, justify="left" if column == "strategy" else "right")
    for o in outcomes:
        out.add_row(*row(o, grid))
    for strategy in dict.fromkeys(o.strategy for o in outcomes[1:]):
        mean = average([o for o in outcomes if o.strategy == strategy])
        out.add_row(*row(mean, grid), style="bold")
    return out


def row(o: Outcome, grid: Outcome) -> list[str]:
    best = "-" if o.best is None else f"{o.best:.4f}"
    seed = "mean" if o.seed == -1 else "-" if o.seed is None else str(o.seed)
    return [
        o.strategy, seed, count(o.trials), count(o.stopped), f"{o.steps:,.0f}",
        f"{o.steps / grid.steps * 100:.0f} %", best, gap(o.best, grid.best), f"{o.wall_s:.0f}",
    ]  # fmt: skip


def count(value: float) -> str:
    """A count, or a mean of counts to one decimal."""
    return str(value) if isinstance(value, int) else f"{value:.1f}"


def average(outcomes: list[Outcome]) -> Outcome:
    bests = [o.best for o in outcomes if o.best is not None]
    return Outcome(
        outcomes[0].strategy,
        -1,
        statistics.mean(o.trials for o in outcomes),
        statistics.mean(o.stopped for o in outcomes),
        round(statistics.mean(o.steps for o in outcomes)),
        statistics.mean(bests) if bests else None,
        statistics.mean(o.wall_s for o in outcomes),
    )


def verdict(outcomes: list[Outcome]) -> str:
    grid = outcomes[0]
    tpe = [o for o in outcomes if o.strategy == "tpe + asha"]
    met = [
        o for o in tpe
        if o.best is not None and grid.best is not None
        and o.best <= grid.best * (1 + TARGET_GAP) and o.steps <= grid.steps * TARGET_SHARE
    ]  # fmt: skip
    return (
        f"target (TPE + ASHA within {TARGET_GAP:.0%} of the grid's best with <= 1/3 of its "
        f"steps): met by {len(met)} of {len(tpe)} seeds"
    )


def main() -> None:
    args = arguments()
    directory = Path(tempfile.mkdtemp(prefix="sweep-search-"))
    env = {"MOMENTUM_DATABASE_URL": f"sqlite:///{directory / 'momentum.sqlite3'}"}
    console = Console(width=140)  # the table whole, whatever the terminal
    try:
        with live_server(env, timeout=60) as url:
            workers = start_workers(url, args.workers, directory)
            try:
                outcomes = measure(url, args, console)
            finally:
                stop(workers)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    console.print(table(outcomes, args))
    console.print(verdict(outcomes))


def measure(url: str, args: argparse.Namespace, console: Console) -> list[Outcome]:
    bodies = [grid_body(args)]
    for strategy in ("random", "tpe"):
        bodies += [search_body(args, strategy, seed) for seed in range(args.seeds)]
    outcomes = []
    with httpx.Client(base_url=f"{url}{API}", timeout=60) as client:
        for body in bodies:
            outcome = run_sweep(client, body, args.timeout)
            shown = row(outcome, outcomes[0] if outcomes else outcome)
            console.print(f"  {body['name']}: " + ", ".join(shown[2:]), highlight=False)
            outcomes.append(outcome)
    return outcomes


if __name__ == "__main__":
    main()
