"""Mixed load against the real service: many writers and compare-view readers at once.

Starts `momentum serve` (SQLite in a fresh data dir; PostgreSQL with --database-url or
--throwaway-postgres), then for --duration seconds (default 60) runs --writers clients
(default 32) each logging a --batch-point batch (loss and accuracy, step after step)
into its own run every --interval seconds (default 0.25, as a reporter flushes; 0 sends
back to back and measures saturation), and --readers clients (default 8) each
reloading a compare view (the curves of 8 runs, smoothed, max_points=1000) and the run
list every --read-interval seconds (default 0.5), as live dashboards refresh.
Loopback only; the counts and the time are bounded by the flags.

--phase spread (default): each client starts at its own moment within its first interval
(seeded), as independent jobs' reporters do. --phase aligned: every client sends at the
same instant of each interval, the worst case (32 batches at once every 0.25 s), which
measures queueing behind a burst rather than the service under that load.

Prints, per kind of request: requests, points/s (writers), p50/p99 latency, errors.

    python bench/load.py
    python bench/load.py --duration 20 --writers 8 --readers 2      # a quick look
    python bench/load.py --throwaway-postgres
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.backend import add_database_arguments, benchmark_database  # noqa: E402
from tests.support import live_server  # noqa: E402

API = "/api/v1"


@dataclass
class Tally:
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    points: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, started: float, ok: bool, points: int = 0) -> None:
        elapsed_ms = (time.perf_counter() - started) * 1000
        with self.lock:  # one tally for many client threads
            self.latencies_ms.append(elapsed_ms)
            if ok:
                self.points += points
            else:
                self.errors += 1


def _batch(first_step: int, size: int) -> bytes:
    points = []
    for step in range(first_step, first_step + size // 2):
        points.append({"key": "loss", "step": step, "value": 2.3 / (1 + step * 1e-3)})
        points.append({"key": "accuracy", "step": step, "value": 1 - 1 / (2 + step)})
    return orjson.dumps({"points": points})


class _Connection:
    """One client's keep-alive connection, stdlib http.client: a few hundred µs of the
    client's CPU a request, where an asyncio httpx client with 40 connections cost
    ~10 ms and starved the service it measured of the machine's two cores."""

    def __init__(self, base_url: str) -> None:
        host, port = base_url.removeprefix("http://").split(":")
        self.http = http.client.HTTPConnection(host, int(port), timeout=60)

    def call(self, method: str, path: str, body: bytes | None = None) -> int:
        headers = {"content-type": "application/json"} if body is not None else {}
        try:
            self.http.request(method, path, body=body, headers=headers)
            response = self.http.getresponse()
            response.read()
            return response.status
        except (OSError, http.client.HTTPException):
            self.http.close()  # reconnects on the next request
            return 0


def _write(
    base_url: str,
    run_id: int,
    args: argparse.Namespace,
    until: float,
    tally: Tally,
    phase: float,
) -> None:
    """One training job's reporter: a batch every --interval seconds (0: back to back)."""
    connection, step, size = _Connection(base_url), 0, args.batch
    next_send = time.monotonic() + phase
    time.sleep(phase)
    while time.monotonic() < until:
        body = _batch(step, size)
        started = time.perf_counter()
        status = connection.call("POST", f"{API}/runs/{run_id}/metrics", body)
        tally.record(started, status == 200, size)
        step += size // 2
        next_send += args.interval
        time.sleep(max(0.0, next_send - time.monotonic()))


def _read(
    base_url: str,
    run_ids: list[int],
    args: argparse.Namespace,
    until: float,
    views: Tally,
    lists: Tally,
    phase: float,
) -> None:
    """One open dashboard: the compare view and the run list, every --read-interval s."""
    connection = _Connection(base_url)
    time.sleep(phase)
    ids = ",".join(map(str, run_ids[:8]))
    compare = f"{API}/compare?run_ids={ids}&keys=loss&smoothing=0.6&max_points=1000"
    while time.monotonic() < until:
        for path, tally in ((compare, views), (f"{API}/runs?limit=50", lists)):
            started = time.perf_counter()
            tally.record(started, connection.call("GET", path) == 200)
        time.sleep(args.read_interval)


def _load(base_url: str, args: argparse.Namespace) -> tuple[dict[str, Tally], float]:
    setup = _Connection(base_url)
    run_ids = []
    for i in range(args.writers):
        body = orjson.dumps({"name": f"load-{i}"})
        setup.http.request("POST", f"{API}/runs", body, {"content-type": "application/json"})
        run_ids.append(int(orjson.loads(setup.http.getresponse().read())["id"]))
    for run_id in run_ids[:8]:  # the readers' runs have curves from the start
        setup.call("POST", f"{API}/runs/{run_id}/metrics", _batch(0, 2))
    tallies = {"ingest": Tally(), "compare view": Tally(), "run list": Tally()}
    started = time.monotonic()
    until = started + args.duration
    phases = random.Random(0)
    spread = args.phase == "spread"
    clients = [
        threading.Thread(
            target=_write,
            args=(base_url, run_id, args, until, tallies["ingest"]),
            kwargs={"phase": phases.uniform(0, args.interval) if spread else 0.0},
        )
        for run_id in run_ids
    ] + [
        threading.Thread(
            target=_read,
            args=(base_url, run_ids, args, until, tallies["compare view"], tallies["run list"]),
            kwargs={"phase": phases.uniform(0, args.read_interval) if spread else 0.0},
        )
        for _ in range(args.readers)
    ]
    for client in clients:
        client.start()
    for client in clients:
        client.join()
    return tallies, time.monotonic() - started


def _table(
    tallies: dict[str, Tally], elapsed: float, args: argparse.Namespace, backend: str
) -> Table:
    title = (
        f"Momentum Monitor under load ({backend}, {args.writers} writers x {args.batch}-point "
        f"batches every {args.interval} s, {args.readers} readers every {args.read_interval} s, "
        f"phase {args.phase}, {elapsed:.0f} s)"
    )
    table = Table(title=title)
    for column in ("requests", "requests/s", "points/s", "p50 ms", "p99 ms", "errors"):
        table.add_column(column, justify="right")
    table.add_column("kind", justify="left")
    for kind, tally in tallies.items():
        latencies = np.array(tally.latencies_ms or [np.nan])
        table.add_row(
            f"{len(tally.latencies_ms):,}",
            f"{len(tally.latencies_ms) / elapsed:,.1f}",
            f"{tally.points / elapsed:,.0f}" if kind == "ingest" else "",
            f"{np.percentile(latencies, 50):.1f}",
            f"{np.percentile(latencies, 99):.1f}",
            f"{tally.errors}",
            kind,
        )
    return table


def measure(args: argparse.Namespace, database_url: str, data_dir: Path) -> Table:
    env = {"MOMENTUM_DATABASE_URL": database_url, "MOMENTUM_DATA_DIR": str(data_dir)}
    os.environ.update(env)
    from service.migrate import upgrade
    from service.settings import Settings

    upgrade(Settings())
    with live_server(env, workers=args.server_workers) as base_url:
        tallies, elapsed = _load(base_url, args)
    backend = "SQLite" if database_url.startswith("sqlite") else "PostgreSQL"
    return _table(tallies, elapsed, args, backend)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    add_database_arguments(parser)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds (at most 600)")
    parser.add_argument("--writers", type=int, default=32, help="at most 256")
    parser.add_argument("--readers", type=int, default=8, help="at most 64")
    parser.add_argument("--batch", type=int, default=200, help="points per ingest request")
    parser.add_argument(
        "--interval",
        type=float,
        default=0.25,
        help="seconds between one writer's batches, as a reporter flushes (0: back to back, "
        "which measures saturation: latency then is queueing behind the other writers)",
    )
    parser.add_argument(
        "--read-interval", type=float, default=0.5, help="seconds between a reader's refreshes"
    )
    parser.add_argument("--server-workers", type=int, default=1, help="momentum serve --workers")
    parser.add_argument(
        "--phase",
        choices=["spread", "aligned"],
        default="spread",
        help="spread: each client at its own moment of the interval; aligned: all at once",
    )
    args = parser.parse_args()
    if not (0 < args.duration <= 600 and 0 < args.writers <= 256 and 0 <= args.readers <= 64):
        parser.error("keep the load bounded: duration <= 600 s, writers <= 256, readers <= 64")

    with benchmark_database(args, prefix="momentum-load-") as (database_url, data_dir):
        table = measure(args, database_url, data_dir)
    Console().print(table)


if __name__ == "__main__":
    main()
