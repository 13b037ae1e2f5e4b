"""Big-table benchmark (issue 10, item 3): reads at tens of millions of points.

Fills a database with --runs runs x --keys keys x --steps steps (default 500 x 2 x
50,000 = 50 million points) plus --list-runs runs without points (a team's run table
of abandoned and queued runs, so the run list has rows to filter), then starts the real
service (`momentum serve`, one process) and times over HTTP, median and p95 of --repeat
after one warm-up call (shown as "first"):
  1. history of one 50,000-step series, in full and with max_points=1000   target <= 100 ms
  2. compare of 10 runs, loss and accuracy, max_points=1000 (and smoothed)  target <= 300 ms
  3. the summary of one sweep (momentum x seed, every run --steps long)
  4. the run list with filters and sorts, at several offsets
and prints the tables' sizes on disk and the bytes per point.

PostgreSQL by default (a private throwaway cluster, gone afterwards), or --database-url
(an empty database) or --sqlite (a fresh file in the temp dir, for comparison):

    python bench/bigtable.py                          # 50M points into a throwaway PostgreSQL
    python bench/bigtable.py --runs 20                # 2M points: a quick look
    python bench/bigtable.py --runs 20 --sqlite
    python bench/bigtable.py --before 0007            # also measure at revision 0007

Points are written in-process through the service's own storage path
(`service.storage.metrics.ingest`, the function behind POST /runs/{id}/metrics), not over
HTTP: bench/ingest.py measures HTTP ingest; here 50M points must load in minutes.
Batches are whole blocks (4,096 steps) and go round-robin over all runs, as if every run
trained at once, so a series' blocks lie scattered through the table as they would in
production. With --before REV the data is loaded at revision REV, measured, migrated to
head and measured again, --rounds times (downgrading between): the same rows before and
after, with the machine's busy spells falling on both.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, insert, text, update
from sqlalchemy.orm import Session, sessionmaker

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from momentum.contract import RunCreate, Status, SweepCreate, expand_grid  # noqa: E402
from service.db import make_engine, make_sessionmaker, transaction  # noqa: E402
from service.migrate import downgrade, head_revision, upgrade  # noqa: E402
from service.models import Job, Run  # noqa: E402
from service.settings import Settings  # noqa: E402
from service.storage import metrics as metric_store  # noqa: E402
from service.storage import runs as run_store  # noqa: E402
from service.storage import sweeps as sweep_store  # noqa: E402
from service.storage.blocks import BLOCK_STEPS  # noqa: E402
from tests.support import ServerProcess, postgres_cluster  # noqa: E402

KEYS = ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "grad_norm", "throughput")
MOMENTA = (0.0, 0.5, 0.9, 0.95, 0.99)
SWEEP_MOMENTA = (0.0, 0.5, 0.9, 0.99)
SWEEP_SEEDS = (0, 1, 2)
OPTIMIZERS = ("sgd", "momentum", "sgd_momentum", "nesterov", "adam")
DATASETS = ("ravine", "spirals", "blobs", "digits")
PROJECTS = 20
POINT_TABLES = ("points", "point_blocks", "point_chunks")
# Bytes a point costs on disk while loading, with room to spare: ~24 in a block plus
# TOAST overhead at rest, but right after a fast load PostgreSQL also holds each batch's
# freed point_chunks copy until vacuum reuses it (measured: 26-51 B/point), plus WAL.
BYTES_PER_POINT_ESTIMATE = 64
SPARE_BYTES = 4 << 30


@dataclass
class Layout:
    """What was generated: the runs with points, the sweeps, and a few picks to read."""

    runs: list[int] = field(default_factory=list)
    sweeps: list[int] = field(default_factory=list)
    points: int = 0
    load_s: float = 0.0


def check_disk(where: Path, points: int) -> None:
    needed = points * BYTES_PER_POINT_ESTIMATE + SPARE_BYTES
    free = shutil.disk_usage(where).free
    if free < needed:
        raise SystemExit(
            f"{points:,} points need about {needed / 2**30:.1f} GiB free under {where}; "
            f"{free / 2**30:.1f} GiB are: choose fewer --runs or --steps"
        )


# --- generating -------------------------------------------------------------------


def run_params(index: int, rng: random.Random) -> dict[str, Any]:
    optimizer = OPTIMIZERS[index % len(OPTIMIZERS)]
    momentum = 0.0 if optimizer == "sgd" else MOMENTA[(index // len(OPTIMIZERS)) % len(MOMENTA)]
    return {
        "optimizer": optimizer,
        "momentum": momentum,
        "lr": rng.choice((0.001, 0.01, 0.03, 0.1)),
        "seed": index % 7,
        "dataset": DATASETS[index % len(DATASETS)],
        "batch_size": rng.choice((32, 64, 128)),
    }


def run_tags(index: int) -> dict[str, str]:
    return {"team": f"team-{index % 5}", "stage": ("dev", "nightly", "paper")[index % 3]}


def created_at(index: int, total: int) -> datetime:
    """Spread over the last year, oldest first."""
    return datetime.now(UTC) - timedelta(days=365) + timedelta(days=365 * index / max(total, 1))


def create_sweeps(sessions: sessionmaker[Session], count: int, steps: int) -> list[int]:
    """Sweeps over momentum x seed, made by the same storage call as POST /sweeps."""
    sweep_ids = []
    grid: dict[str, list[Any]] = {"momentum": list(SWEEP_MOMENTA), "seed": list(SWEEP_SEEDS)}
    base: dict[str, Any] = {
        "optimizer": "momentum",
        "dataset": "ravine",
        "model": "linear",
        "steps": steps,
    }
    for index in range(count):
        body = SweepCreate(name=f"bigtable-{index}", base=base, grid=grid, project="sweeps")
        combinations = expand_grid(body.base, body.grid, 1_000)
        with transaction(sessions, write=True) as session:
            sweep_ids.append(sweep_store.create_sweep(session, body, combinations, 3).id)
    return sweep_ids


def create_runs(sessions: sessionmaker[Session], args: argparse.Namespace) -> Layout:
    rng = random.Random(7)
    layout = Layout()
    sweeps = max(1, args.runs // 50) if args.sweeps is None else args.sweeps
    sweeps = min(sweeps, args.runs // (len(SWEEP_MOMENTA) * len(SWEEP_SEEDS)))
    layout.sweeps = create_sweeps(sessions, sweeps, args.steps)
    with transaction(sessions, write=True) as session:
        finished = {"status": Status.succeeded.value}
        session.execute(update(Job).where(Job.sweep_id.in_(layout.sweeps)).values(finished))
        swept = session.scalars(
            update(Run).where(Run.sweep_id.in_(layout.sweeps)).values(finished).returning(Run.id)
        ).all()
        layout.runs.extend(sorted(swept))
        for index in range(args.runs - len(layout.runs)):
            body = RunCreate(
                name=f"bigtable-{index}-{OPTIMIZERS[index % len(OPTIMIZERS)]}",
                project=f"project-{index % PROJECTS}",
                params=run_params(index, rng),
                tags=run_tags(index),
                status=Status.succeeded,
            )
            layout.runs.append(run_store.create_run(session, body)[0].id)
        dates = [
            {"id": run_id, "created_at": created_at(i, len(layout.runs))}
            for i, run_id in enumerate(layout.runs)
        ]
        session.execute(update(Run), dates)
    create_list_runs(sessions, args.list_runs, rng)
    return layout


def create_list_runs(sessions: sessionmaker[Session], count: int, rng: random.Random) -> None:
    """Runs without points, many at a time, with the same indexed columns create_run sets."""
    statuses = [s.value for s in Status]
    for chunk in range(0, count, 10_000):
        rows = []
        for index in range(chunk, min(count, chunk + 10_000)):
            params = run_params(index, rng)
            when = created_at(index, count)
            rows.append(
                {
                    "project": f"project-{index % PROJECTS}",
                    "name": f"trial-{index}-{params['optimizer']}-{params['dataset']}",
                    "status": statuses[index % len(statuses)],
                    "diverged": False,
                    "params": params,
                    "tags": run_tags(index),
                    "created_at": when,
                    "updated_at": when,
                    **run_store.indexed_columns(params),
                }
            )
        with transaction(sessions, write=True) as session:
            session.execute(insert(Run), rows)


def curve(
    key: str, run_index: int, steps: np.ndarray, total: int, rng: np.random.Generator
) -> np.ndarray:
    """A plausible training curve; every 25th run's loss diverges (+Infinity) at 60 %."""
    speed = 1 + 10 * MOMENTA[run_index % len(MOMENTA)]
    loss = 2.3 / (1 + speed * steps * 1e-4) + 0.02 * rng.random(len(steps))
    values = {
        "loss": loss,
        "accuracy": 1 - loss / 2.4,
        "val_loss": loss * 1.05,
        "val_accuracy": 1 - loss / 2.3,
        "lr": 0.1 * 0.5 ** (steps // 10_000),
        "grad_norm": 5 * loss + rng.random(len(steps)),
        "throughput": 900 + 50 * rng.random(len(steps)),
    }[key].astype(np.float64)
    if run_index % 25 == 24 and key == "loss":
        values[steps >= int(0.6 * total)] = np.inf
    return values


def load_points(sessions: sessionmaker[Session], layout: Layout, args: argparse.Namespace) -> None:
    """Whole blocks, round-robin over the runs, each one ingest call (one transaction)."""
    rng = np.random.default_rng(11)
    keys = KEYS[: args.keys]
    started = time.perf_counter()
    origin = time.time() - 365 * 86_400
    last_report = started
    for start in range(0, args.steps, BLOCK_STEPS):
        steps = np.arange(start, min(start + BLOCK_STEPS, args.steps), dtype=np.int64)
        step_list = steps.tolist()
        walls = (origin + steps * 0.05).tolist()
        for run_index, run_id in enumerate(layout.runs):
            points: list[Any] = []
            for key in keys:
                values = curve(key, run_index, steps, args.steps, rng).tolist()
                points += [
                    {"key": key, "step": s, "value": v, "wall_time": w}
                    for s, v, w in zip(step_list, values, walls, strict=True)
                ]
            with transaction(sessions, write=True) as session:
                metric_store.ingest(session, run_id, points, time.time())
            layout.points += len(points)
            if time.perf_counter() - last_report > 30:
                last_report = time.perf_counter()
                rate = layout.points / (last_report - started)
                print(f"  {layout.points:,} points loaded ({rate:,.0f}/s)", flush=True)
    layout.load_s = time.perf_counter() - started


def maintain(engine: Engine) -> None:
    """VACUUM ANALYZE (PostgreSQL) or ANALYZE (SQLite): what autovacuum would have done by
    the time anyone reads a table this size (and what makes index-only scans possible)."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        if engine.dialect.name == "postgresql":
            connection.exec_driver_sql("VACUUM ANALYZE")
        else:
            connection.exec_driver_sql("ANALYZE")


# --- measuring --------------------------------------------------------------------


class _Server(ServerProcess):
    """`momentum serve`, ready when /healthz answers: with --before, the first phase runs
    on an older schema, where /readyz rightly reports migrations pending."""

    def start(self) -> str:
        argv = [sys.executable, "-m", "momentum.cli", "serve", "--port", str(self.port)]
        argv += ["--workers", "1", "--log-level", "warning"]
        self.process = subprocess.Popen(argv, env={**os.environ, **self.env})
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"momentum serve exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return self.url
            except httpx.TransportError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("momentum serve did not start")


@dataclass(frozen=True)
class Case:
    label: str
    path: str
    params: dict[str, Any]
    target: str = ""


@dataclass(frozen=True)
class Timing:
    first: float
    samples: list[float]
    size: int
    items: str

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def p95(self) -> float:
        return float(np.percentile(self.samples, 95))

    def joined(self, later: Timing) -> Timing:
        """Samples of both rounds; the first call of the first round."""
        return Timing(self.first, self.samples + later.samples, self.size, self.items)


def cases(layout: Layout, args: argparse.Namespace) -> list[Case]:
    picks = random.Random(3).sample(layout.runs, min(10, len(layout.runs)))
    one = picks[0]
    ids = ",".join(map(str, picks))
    keys = ",".join(KEYS[: min(2, args.keys)])
    steps = f"{args.steps:,}"
    compare = {"run_ids": ids, "keys": keys, "max_points": 1000}
    sweep = {"key": "loss", "threshold": 0.5}
    listed = {"project": "project-3"}
    return [
        Case(f"history, {steps} steps", f"/runs/{one}/metrics/loss", {}, "<= 100"),
        Case("  max_points=1000", f"/runs/{one}/metrics/loss", {"max_points": 1000}),
        Case(
            "  steps 20,000-30,000",
            f"/runs/{one}/metrics/loss",
            {"start_step": 20_000, "end_step": 29_999},
        ),
        Case("series list of a run", f"/runs/{one}/metrics", {}),
        Case(f"compare {len(picks)} runs x {keys}, max_points=1000", "/compare", compare, "<= 300"),
        Case("  smoothing=0.6", "/compare", {**compare, "smoothing": 0.6}, "<= 300"),
        Case(f"  full {steps} steps, loss", "/compare", {"run_ids": ids, "keys": "loss"}),
        Case(
            f"sweep summary, {len(SWEEP_MOMENTA) * len(SWEEP_SEEDS)} runs x {steps}",
            f"/sweeps/{layout.sweeps[0]}/summary",
            sweep,
        ),
        Case("runs: newest first", "/runs", {}),
        Case("runs: offset 20,000", "/runs", {"offset": 20_000}),
        Case("runs: project", "/runs", listed),
        Case("runs: project, offset 2,000", "/runs", {**listed, "offset": 2_000}),
        Case("runs: project, sort name", "/runs", {**listed, "sort": "name"}),
        Case("runs: project, status", "/runs", {**listed, "status": "failed"}),
        Case(
            "runs: momentum 0.9..0.95, sort momentum",
            "/runs",
            {"momentum_min": 0.9, "momentum_max": 0.95, "sort": "momentum"},
        ),
        Case("runs: optimizer=adam, offset 5,000", "/runs", {"optimizer": "adam", "offset": 5_000}),
        Case("runs: sweep", "/runs", {"sweep_id": layout.sweeps[0]}),
        Case("runs: q=bigtable-4", "/runs", {"q": "bigtable-4"}),
        Case("runs: tag team:team-2", "/runs", {"tag": "team:team-2"}),
        Case("runs: param dataset:digits", "/runs", {"param": "dataset:digits"}),
        Case("runs: limit 1000", "/runs", {"limit": 1000}),
    ]


def timed(http: httpx.Client, case: Case, repeat: int) -> Timing:
    path = f"/api/v1{case.path}"
    started = time.perf_counter()
    http.get(path, params=case.params).raise_for_status()
    first = (time.perf_counter() - started) * 1000
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = http.get(path, params=case.params).raise_for_status()
        timings.append((time.perf_counter() - started) * 1000)
    body = response.json()
    items = (
        f"{len(body['items'])} of {body['total']:,}" if "items" in body and "total" in body else ""
    )
    return Timing(first, timings, len(response.content), items)


def measure(env: dict[str, str], layout: Layout, args: argparse.Namespace) -> dict[str, Timing]:
    with _Server(env) as server, httpx.Client(base_url=server.start(), timeout=300) as http:
        return {case.label: timed(http, case, args.repeat) for case in cases(layout, args)}


def add_round(phases: dict[str, dict[str, Timing]], phase: str, timings: dict[str, Timing]) -> None:
    known = phases.setdefault(phase, {})
    for label, timing in timings.items():
        known[label] = known[label].joined(timing) if label in known else timing


# --- sizes ------------------------------------------------------------------------

_PG_SIZES = """
SELECT c.relname, pg_total_relation_size(c.oid), pg_relation_size(c.oid),
       pg_indexes_size(c.oid), COALESCE(pg_total_relation_size(c.reltoastrelid), 0),
       c.reltuples::bigint
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind = 'r'
ORDER BY pg_total_relation_size(c.oid) DESC
"""


def sizes(engine: Engine) -> tuple[list[tuple[str, int, int, int, int, int]], int]:
    """(table, total, heap, indexes, toast, rows) and the whole database's bytes."""
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            rows = [tuple(row) for row in connection.exec_driver_sql(_PG_SIZES)]
            total = connection.scalar(text("SELECT pg_database_size(current_database())"))
            return rows, int(total or 0)
        page = connection.exec_driver_sql("PRAGMA page_size").scalar_one()
        pages = connection.exec_driver_sql("PRAGMA page_count").scalar_one()
        try:
            stat = connection.exec_driver_sql(
                "SELECT tbl_name, SUM(pgsize) FROM dbstat JOIN sqlite_master USING (name) "
                "GROUP BY tbl_name ORDER BY 2 DESC"
            ).all()
        except Exception:  # SQLite built without dbstat
            stat = []
        return [(name, int(size), 0, 0, 0, 0) for name, size in stat], int(page * pages)


# --- reporting --------------------------------------------------------------------


def results_table(
    title: str, phases: dict[str, dict[str, Timing]], targets: dict[str, str]
) -> Table:
    table = Table(title=title)
    table.add_column("request")
    for phase in phases:
        for column in ("first", "median", "p95"):
            table.add_column(f"{phase}\n{column} ms", justify="right")
    for column in ("response", "items", "target ms"):
        table.add_column(column, justify="right")
    last = list(phases.values())[-1]
    for label in last:
        cells = []
        for timings in phases.values():
            t = timings[label]
            cells += [f"{t.first:.1f}", f"{t.median:.1f}", f"{t.p95:.1f}"]
        t = last[label]
        table.add_row(label, *cells, f"{t.size / 1024:,.0f} KB", t.items, targets[label])
    return table


def sizes_table(rows: list[tuple[str, int, int, int, int, int]], total: int, points: int) -> Table:
    table = Table(title=f"On disk: {total / 2**20:,.0f} MiB in all, {total / points:.1f} B/point")
    for column in ("table", "total MiB", "heap MiB", "indexes MiB", "toast MiB", "rows"):
        table.add_column(column, justify="left" if column == "table" else "right")
    for name, whole, heap, indexes, toast, count in rows:
        if whole < 64 * 1024:
            continue
        mib = [f"{size / 2**20:,.1f}" for size in (whole, heap, indexes, toast)]
        table.add_row(name, *mib, f"{count:,}" if count > 0 else "")
    stored = [row for row in rows if row[0] in POINT_TABLES]
    if stored:
        names = " + ".join(row[0] for row in stored)
        table.caption = f"{names}: {sum(row[1] for row in stored) / points:.1f} B/point"
    return table


@contextmanager
def database(args: argparse.Namespace) -> Iterator[str]:
    if args.database_url:
        yield args.database_url
    elif args.sqlite:
        with tempfile.TemporaryDirectory(prefix="momentum-bigtable-") as tmp:
            yield f"sqlite:///{Path(tmp) / 'momentum.sqlite3'}"
    else:
        with postgres_cluster() as cluster:
            yield f"{cluster.url}/postgres"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--database-url", help="PostgreSQL URL of an empty database")
    parser.add_argument("--sqlite", action="store_true", help="SQLite in the temp dir instead")
    parser.add_argument("--runs", type=int, default=500, help="runs with points (default 500)")
    parser.add_argument("--keys", type=int, default=2, choices=range(1, len(KEYS) + 1))
    parser.add_argument("--steps", type=int, default=50_000, help="steps per series")
    parser.add_argument("--list-runs", type=int, default=50_000, help="runs without points")
    parser.add_argument("--sweeps", type=int, help="sweeps of 12 runs (default runs/50)")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--before", metavar="REV", help="load at REV, measure, upgrade, measure")
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="with --before: rounds of (REV, head), downgrading between, so a busy spell "
        "of the machine falls on both sides (default 2)",
    )
    args = parser.parse_args()
    points = args.runs * args.keys * args.steps
    check_disk(Path(tempfile.gettempdir()), points)

    console = Console(width=max(150, Console().width))
    with database(args) as url:
        env = {"MOMENTUM_DATABASE_URL": url, "MOMENTUM_DATA_DIR": tempfile.gettempdir()}
        settings = Settings(database_url=url)
        upgrade(settings, args.before or "head")
        engine = make_engine(settings)
        try:
            sessions = make_sessionmaker(engine)
            print(f"loading {points:,} points into {engine.dialect.name} ...", flush=True)
            layout = create_runs(sessions, args)
            load_points(sessions, layout, args)
            maintain(engine)
            rate = layout.points / layout.load_s
            print(f"loaded in {layout.load_s:.0f} s ({rate:,.0f} points/s)", flush=True)
            phases: dict[str, dict[str, Timing]] = {}
            head = head_revision() or "head"
            for round_ in range(args.rounds if args.before else 1):
                if args.before:
                    if round_:
                        downgrade(settings, args.before)
                        maintain(engine)
                    add_round(phases, args.before, measure(env, layout, args))
                    upgrade(settings, "head")
                    maintain(engine)
                add_round(phases, head, measure(env, layout, args))
            rows, total = sizes(engine)
        finally:
            engine.dispose()

    backend = engine.dialect.name
    rounds = f" x {args.rounds} rounds" if args.before and args.rounds > 1 else ""
    targets = {case.label: case.target for case in cases(layout, args)}
    title = (
        f"Momentum Monitor big tables ({backend}; {layout.points:,} points = {args.runs} runs x "
        f"{args.keys} keys x {args.steps:,} steps, +{args.list_runs:,} runs without points; "
        f"one server process; first call, then median/p95 of {args.repeat}{rounds}; "
        f"loaded in {layout.load_s:.0f} s)"
    )
    console.print(results_table(title, phases, targets))
    console.print(sizes_table(rows, total, layout.points))


if __name__ == "__main__":
    main()
