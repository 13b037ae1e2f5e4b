"""PostgreSQL ingest routes side by side, below HTTP: which way to write a batch.

On a private PostgreSQL cluster (PostgreSQL installed; loopback only), writes --points
points (loss and accuracy, step after step) in --batch-point transactions from
--clients concurrent connections, each into its own series, by each route:

  rows, execute per row      INSERT … ON CONFLICT DO UPDATE, one statement per point
  rows, executemany          the same statement, psycopg 3 executemany (pipelined)
  rows, unnest               one INSERT … SELECT FROM unnest(arrays) ON CONFLICT
  rows, COPY + upsert        COPY into a temporary staging table, INSERT … ON CONFLICT
  chunks (the service)       one packed blob row per series per batch (point_chunks)

and prints points/s and bytes per point (after VACUUM). Never part of the test run.

    python bench/pg_routes.py
    python bench/pg_routes.py --points 400000 --clients 4
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import psycopg
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from service.storage.blocks import RECORD_DTYPE  # noqa: E402
from tests.support import throwaway_postgres  # noqa: E402

SCHEMA = """
CREATE TABLE points (series_id integer, step bigint, value float8, wall_time float8,
                     PRIMARY KEY (series_id, step));
CREATE TABLE point_chunks (series_id integer, first_step bigint, last_step bigint,
                           count integer, min_value float8, max_value float8, data bytea,
                           PRIMARY KEY (series_id, first_step));
ALTER TABLE point_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
ALTER TABLE point_chunks SET (toast_tuple_target = 8160);
"""
UPSERT = (
    "INSERT INTO points (series_id, step, value, wall_time) VALUES (%s, %s, %s, %s) "
    "ON CONFLICT (series_id, step) DO UPDATE SET value = excluded.value, "
    "wall_time = excluded.wall_time"
)
UNNEST = (
    "INSERT INTO points (series_id, step, value, wall_time) "
    "SELECT * FROM unnest(%s::integer[], %s::bigint[], %s::float8[], %s::float8[]) "
    "ON CONFLICT (series_id, step) DO UPDATE SET value = excluded.value, "
    "wall_time = excluded.wall_time"
)
CHUNK = (
    "INSERT INTO point_chunks (series_id, first_step, last_step, count, min_value, "
    "max_value, data) VALUES (%s, %s, %s, %s, %s, %s, %s)"
)

Batch = list[tuple[int, int, float, float]]  # (series_id, step, value, wall_time)


def batches(client: int, points: int, size: int) -> list[Batch]:
    out, rows = [], []
    for index in range(points):
        step, accuracy = divmod(index, 2)
        value = 1 - 1 / (2 + step) if accuracy else 2.3 / (1 + step * 1e-3)
        rows.append((client * 2 + accuracy, step, value, 1.7e9 + step * 0.01))
        if len(rows) == size:
            out.append(rows)
            rows = []
    return out + ([rows] if rows else [])


def per_row(cursor: psycopg.Cursor, batch: Batch) -> None:
    for row in batch:
        cursor.execute(UPSERT, row)


def executemany(cursor: psycopg.Cursor, batch: Batch) -> None:
    cursor.executemany(UPSERT, batch)


def unnest(cursor: psycopg.Cursor, batch: Batch) -> None:
    cursor.execute(UNNEST, [list(column) for column in zip(*batch, strict=True)])


def copy_upsert(cursor: psycopg.Cursor, batch: Batch) -> None:
    cursor.execute(
        "CREATE TEMPORARY TABLE IF NOT EXISTS staging "
        "(series_id integer, step bigint, value float8, wall_time float8) ON COMMIT DELETE ROWS"
    )
    with cursor.copy("COPY staging FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(["int4", "int8", "float8", "float8"])
        for row in batch:
            copy.write_row(row)
    cursor.execute(
        "INSERT INTO points SELECT * FROM staging ON CONFLICT (series_id, step) DO UPDATE "
        "SET value = excluded.value, wall_time = excluded.wall_time"
    )


def chunks(cursor: psycopg.Cursor, batch: Batch) -> None:
    """What the service does: per series, one packed row (see service/storage/blocks.py)."""
    rows = []
    for series_id in sorted({row[0] for row in batch}):
        mine = [row for row in batch if row[0] == series_id]
        records = np.empty(len(mine), dtype=RECORD_DTYPE)
        records["step"] = [row[1] for row in mine]
        records["value"] = [row[2] for row in mine]
        records["wall_time"] = [row[3] for row in mine]
        values = records["value"]
        rows.append(
            (
                series_id,
                int(records["step"][0]),
                int(records["step"][-1]),
                len(records),
                float(values.min()),
                float(values.max()),
                records.tobytes(),
            )
        )
    cursor.executemany(CHUNK, rows)


ROUTES: dict[str, Callable[[psycopg.Cursor, Batch], None]] = {
    "rows, execute per row": per_row,
    "rows, executemany (pipelined)": executemany,
    "rows, unnest arrays": unnest,
    "rows, COPY + upsert": copy_upsert,
    "chunks (the service)": chunks,
}


def measure(url: str, route: Callable[[psycopg.Cursor, Batch], None], args: argparse.Namespace):  # type: ignore[no-untyped-def]
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("DROP TABLE IF EXISTS points, point_chunks")
        admin.execute(SCHEMA)
    work = [batches(c, args.points // args.clients, args.batch) for c in range(args.clients)]
    go = threading.Barrier(args.clients + 1)

    def client(mine: list[Batch]) -> None:
        with psycopg.connect(url) as connection:
            go.wait()
            for batch in mine:
                with connection.cursor() as cursor:
                    route(cursor, batch)
                connection.commit()

    threads = [threading.Thread(target=client, args=(mine,)) for mine in work]
    for thread in threads:
        thread.start()
    go.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    rate = args.points / (time.perf_counter() - started)
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("VACUUM points")
        admin.execute("VACUUM point_chunks")
        size = admin.execute(
            "SELECT pg_total_relation_size('points') + pg_total_relation_size('point_chunks')"
        ).fetchone()
    assert size is not None
    return rate, size[0] / args.points


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--points", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument(
        "--per-row-points", type=int, default=20_000, help="fewer for the slow per-row route"
    )
    args = parser.parse_args()
    table = Table(
        title=f"PostgreSQL ingest routes ({args.clients} connections, "
        f"{args.batch}-point transactions, below HTTP)"
    )
    for column in ("route", "points", "points/s", "bytes/point"):
        table.add_column(column, justify="right" if column != "route" else "left")
    with throwaway_postgres() as server:
        url = f"{server}/postgres".replace("postgresql+psycopg://", "postgresql://")
        for name, route in ROUTES.items():
            run = argparse.Namespace(**vars(args))
            if route is per_row:
                run.points = args.per_row_points
            rate, per_point = measure(url, route, run)
            table.add_row(name, f"{run.points:,}", f"{rate:,.0f}", f"{per_point:.1f}")
    Console().print(table)


if __name__ == "__main__":
    main()
