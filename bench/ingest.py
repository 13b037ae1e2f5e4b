"""Ingest and history-read benchmark against the real service.

Starts `momentum serve` (SQLite in a fresh data dir; PostgreSQL when --database-url is
given), then measures:
  1. ingest of --points points in 1,000-point batches from one client
  2. the same from 4 concurrent client processes (each its own run)
  3. reading one 100,000-point history (median of 5), and with max_points=1000
  4. bytes per point on disk
  5. optionally (--memory-points N) the server's RSS while N more points stream in

    python bench/ingest.py                       # SQLite, 200,000 points
    python bench/ingest.py --database-url postgresql+psycopg://user@host/db
    python bench/ingest.py --throwaway-postgres     # a private cluster (PostgreSQL installed)
    python bench/ingest.py --memory-points 10000000

Batches are encoded before the clock starts: the figure is the service's, not the client's.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing as mp
import os
import statistics
import sys
import time
from pathlib import Path

import httpx
import orjson
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.backend import add_database_arguments, benchmark_database  # noqa: E402
from tests.support import live_server  # noqa: E402

BATCH = 1_000


def encoded_batches(total_points: int, start_step: int = 0) -> list[bytes]:
    """Step-major, loss and accuracy per step, as a training loop sends them."""
    now = time.time()
    batches, points = [], []
    for index in range(total_points):
        step = start_step + index // 2
        key = "loss" if index % 2 == 0 else "accuracy"
        value = 2.3 / (1 + step * 1e-3) if key == "loss" else 1 - 1 / (2 + step)
        points.append({"key": key, "step": step, "value": value, "wall_time": now + step * 0.01})
        if len(points) == BATCH:
            batches.append(orjson.dumps({"points": points}))
            points = []
    if points:
        batches.append(orjson.dumps({"points": points}))
    return batches


def new_run(http: httpx.Client, name: str) -> int:
    return int(http.post("/api/v1/runs", json={"name": name}).raise_for_status().json()["id"])


def send_all(base_url: str, run_id: int, batches: list[bytes]) -> None:
    """One keep-alive connection, stdlib client: the same client as the MLflow
    figures in docs/design.md (bench/peers/mlflow_ingest.py), so the ratio is fair."""
    host, port = base_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    headers = {"content-type": "application/json"}
    path = f"/api/v1/runs/{run_id}/metrics"
    try:
        for body in batches:
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"ingest answered {response.status}")
    finally:
        connection.close()


def _client_process(base_url: str, run_id: int, points: int, ready, go) -> None:  # type: ignore[no-untyped-def]
    batches = encoded_batches(points)
    ready.release()
    go.wait()
    send_all(base_url, run_id, batches)


def ingest_concurrently(base_url: str, clients: int, total_points: int) -> float:
    with httpx.Client(base_url=base_url) as http:
        run_ids = [new_run(http, f"bench-{clients}-clients-{i}") for i in range(clients)]
    context = mp.get_context("spawn")
    ready, go = context.Semaphore(0), context.Event()
    share = total_points // clients
    processes = [
        context.Process(target=_client_process, args=(base_url, run_id, share, ready, go))
        for run_id in run_ids
    ]
    for process in processes:
        process.start()
    for _ in processes:
        ready.acquire()
    started = time.perf_counter()
    go.set()
    for process in processes:
        process.join()
        if process.exitcode != 0:
            raise RuntimeError("a client process failed")
    return share * clients / (time.perf_counter() - started)


def ingest_one_client(base_url: str, total_points: int) -> tuple[int, float]:
    batches = encoded_batches(total_points)
    with httpx.Client(base_url=base_url) as http:
        run_id = new_run(http, "bench-1-client")
    started = time.perf_counter()
    send_all(base_url, run_id, batches)
    return run_id, total_points / (time.perf_counter() - started)


def history_ms(base_url: str, run_id: int, query: str = "") -> tuple[float, int, int]:
    timings = []
    with httpx.Client(base_url=base_url, timeout=60) as http:
        for _ in range(5):
            started = time.perf_counter()
            response = http.get(f"/api/v1/runs/{run_id}/metrics/loss{query}").raise_for_status()
            timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings), len(response.json()["steps"]), len(response.content)


_POINT_TABLES = ("points", "point_blocks", "point_chunks")


def _pg_point_bytes(engine) -> int:  # type: ignore[no-untyped-def]
    sizes = " + ".join(f"pg_total_relation_size('{table}')" for table in _POINT_TABLES)
    with engine.connect() as connection:
        return int(connection.exec_driver_sql(f"SELECT {sizes}").scalar_one())


def bytes_per_point(database_url: str, data_dir: Path) -> tuple[float, float]:
    """Bytes on disk per stored point: (as written, after VACUUM on PostgreSQL)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    if engine.dialect.name == "postgresql":
        # Before VACUUM: what autovacuum has not yet got back (dead copies of updated
        # and deleted rows: folded chunks, block rewrites); after: the steady state.
        before = _pg_point_bytes(engine)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            for table in _POINT_TABLES:
                connection.exec_driver_sql(f"VACUUM {table}")
    with engine.connect() as connection:
        count = connection.execute(
            text(
                "SELECT (SELECT count(*) FROM points) + "
                "(SELECT coalesce(sum(count), 0) FROM point_blocks) + "
                "(SELECT coalesce(sum(count), 0) FROM point_chunks)"
            )
        ).scalar_one()
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            size = sum(p.stat().st_size for p in data_dir.glob("momentum.sqlite3*"))
            before = size
        else:
            size = _pg_point_bytes(engine)
    engine.dispose()
    return before / count, size / count


def server_rss_mb(base_url: str) -> float:
    port = base_url.rsplit(":", 1)[1]
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if b"serve" in cmdline and port.encode() in cmdline:
            for line in (proc / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    raise RuntimeError("server process not found")


def memory_profile(base_url: str, total: int) -> list[tuple[int, float]]:
    with httpx.Client(base_url=base_url) as http:
        run_id = new_run(http, "bench-memory")
    samples, sent, chunk = [(0, server_rss_mb(base_url))], 0, 200_000
    while sent < total:
        send_all(base_url, run_id, encoded_batches(chunk, start_step=sent // 2))
        sent += chunk
        samples.append((sent, server_rss_mb(base_url)))
    return samples


def measure(args: argparse.Namespace, database_url: str, data_dir: Path) -> Table:
    env = {"MOMENTUM_DATABASE_URL": database_url, "MOMENTUM_DATA_DIR": str(data_dir)}
    os.environ.update(env)
    from service.migrate import upgrade
    from service.settings import Settings

    upgrade(Settings())
    with live_server(env, workers=args.server_workers) as base_url:
        _, one = ingest_one_client(base_url, args.points)
        four = ingest_concurrently(base_url, 4, args.points)
        history_run, _ = ingest_one_client(base_url, args.history_steps * 2)
        full_ms, full_n, full_bytes = history_ms(base_url, history_run)
        small_ms, small_n, _ = history_ms(base_url, history_run, "?max_points=1000")
        memory = memory_profile(base_url, args.memory_points) if args.memory_points else []
    written, per_point = bytes_per_point(database_url, data_dir)

    backend = "SQLite" if database_url.startswith("sqlite") else "PostgreSQL"
    title = f"Momentum Monitor ingest and history ({backend}, {args.server_workers} server process)"
    table = Table(title=title)
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("target", justify="right")
    table.add_row(f"ingest, 1 client, {BATCH}-point batches", f"{one:,.0f} points/s", ">= 100,000")
    table.add_row(
        f"ingest, 4 clients, {BATCH}-point batches", f"{four:,.0f} points/s", ">= 150,000"
    )
    table.add_row(
        f"history read, {full_n:,} points ({full_bytes / 1e6:.1f} MB)",
        f"{full_ms:.1f} ms",
        "<= 100",
    )
    table.add_row(f"history read, max_points=1000 ({small_n} points)", f"{small_ms:.1f} ms", "")
    table.add_row("bytes per point on disk", f"{per_point:.1f}", "<= 40 (SQLite)")
    if not database_url.startswith("sqlite"):
        table.add_row("bytes per point before VACUUM (dead copies)", f"{written:.1f}", "")
    for sent, rss in memory:
        table.add_row(f"server RSS after {sent:,} more points", f"{rss:.0f} MB", "flat")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    add_database_arguments(parser)
    parser.add_argument("--points", type=int, default=200_000)
    parser.add_argument("--history-steps", type=int, default=100_000)
    parser.add_argument("--memory-points", type=int, default=0)
    parser.add_argument("--server-workers", type=int, default=1, help="momentum serve --workers")
    args = parser.parse_args()

    with benchmark_database(args, prefix="momentum-bench-") as (database_url, data_dir):
        table = measure(args, database_url, data_dir)
    Console().print(table)


if __name__ == "__main__":
    main()
