"""Diagnosis benchmark (#21): the analysis of one 1,000,000-point series, per curve shape
and per rule, in process (median of --repeat after one warm-up), plus reading the same
series back from a real SQLite file and diagnosing it as the route does.

    python bench/diagnosis.py
    python bench/diagnosis.py --points 100000 --repeat 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service.analysis import detectors  # noqa: E402
from service.analysis.curve import Curve  # noqa: E402
from service.analysis.diagnosis import Series, diagnose  # noqa: E402

PARAMS = {"optimizer": "momentum", "momentum": 0.99, "lr": 0.05, "dataset": "ravine"}


def shapes(n: int) -> dict[str, np.ndarray]:
    steps = np.arange(n)
    rng = np.random.default_rng(0)
    noise = np.exp(rng.normal(0.0, 0.01, n))
    trend = 2.0 * np.exp(-steps / (n / 3)) + 0.05
    ringing = trend + 0.3 * np.exp(-steps / n) * np.cos(2 * np.pi * steps / 40)
    spiky = trend * noise
    spiky[rng.integers(0, n, 5)] *= 5
    return {
        "clean, noisy": trend * noise,
        "oscillating (period 40)": ringing * noise,
        "flattening at n/2": 2.0 * np.exp(-np.minimum(steps, n // 2) / (n / 20)) * noise,
        "5 spikes": spiky,
    }


def timed(work: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median wall and CPU milliseconds: on a shared machine the wall time includes
    waiting for a core, which the CPU time (this process's, all threads) does not."""
    work()
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        work()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls) * 1000, statistics.median(cpus) * 1000


def analysis_rows(n: int, repeat: int) -> list[tuple[str, tuple[float, float], str]]:
    steps = np.arange(n)
    rows = []
    for name, values in shapes(n).items():
        series = Series(steps, values)
        kinds = ", ".join(f.kind for f in diagnose("loss", series, PARAMS)) or "none"
        rows.append((name, timed(lambda s=series: diagnose("loss", s, PARAMS), repeat), kinds))
    curve = Curve.of("loss", steps, shapes(n)["oscillating (period 40)"])
    for rule in ("oscillation", "plateau", "spikes"):
        work = getattr(detectors, rule)
        rows.append((f"  rule {rule} alone", timed(lambda w=work: w(curve), repeat), ""))
    return rows


def stored_row(n: int, repeat: int) -> tuple[str, tuple[float, float], str]:
    """Ingest into a real SQLite file, then read the whole series and diagnose it."""
    from fastapi.testclient import TestClient

    from service import Settings, create_app
    from service.deps import app_state
    from service.diagnosis import diagnose_key
    from service.migrate import upgrade
    from service.models import Run

    with tempfile.TemporaryDirectory() as directory:
        settings = Settings(database_url=f"sqlite:///{directory}/m.sqlite3", diagnosis_interval_s=0)
        upgrade(settings)
        values = shapes(n)["oscillating (period 40)"]
        with TestClient(create_app(settings)) as client:
            run_id = client.post("/api/v1/runs", json={"params": PARAMS}).json()["id"]
            for start in range(0, n, 100_000):
                batch = [
                    {"key": "loss", "step": s, "value": float(values[s])}
                    for s in range(start, min(n, start + 100_000))
                ]
                client.post(f"/api/v1/runs/{run_id}/metrics", json={"points": batch})
            sessions = app_state(client.app).sessions  # type: ignore[arg-type]

            def read_and_diagnose() -> object:
                with sessions() as session:
                    return diagnose_key(session, session.get(Run, run_id), "loss")

            return ("read from SQLite + diagnose", timed(read_and_diagnose, repeat), "oscillation")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rows = analysis_rows(args.points, args.repeat) + [stored_row(args.points, args.repeat)]
    print(f"| {args.points:,}-point series | wall ms | CPU ms | findings |")
    print("|---|---|---|---|")
    for name, (wall, cpu), kinds in rows:
        print(f"| {name} | {wall:.0f} | {cpu:.0f} | {kinds} |")


if __name__ == "__main__":
    main()
