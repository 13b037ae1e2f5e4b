"""Data access for metric points: batch upsert, series summaries, columnar history reads."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, aliased

from momentum.contract import MetricPoint
from service.models import Point, Run, Series

# The same text is valid on SQLite and PostgreSQL; only the placeholder differs. It runs
# through the driver's executemany: SQLAlchemy's per-row parameter handling costs ~4x
# the insert itself at 1,000 rows (measured: 16 ms against 4 ms on SQLite).
_UPSERT_SQL = (
    "INSERT INTO points (series_id, step, value, wall_time) VALUES ({p}, {p}, {p}, {p}) "
    "ON CONFLICT (series_id, step) DO UPDATE "
    "SET value = excluded.value, wall_time = excluded.wall_time"
)


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _placeholder(session: Session) -> str:
    return "%s" if _dialect(session) == "postgresql" else "?"


def _driver_cursor(session: Session) -> Any:
    connection = session.connection().connection.driver_connection
    assert connection is not None
    return connection.cursor()


def series_ids(session: Session, run_id: int, keys: Iterable[str]) -> dict[str, int]:
    """Ids of the run's series for `keys`, creating the missing ones."""
    wanted = set(keys)
    lookup = select(Series.key, Series.id).where(Series.run_id == run_id, Series.key.in_(wanted))
    found: dict[str, int] = {key: id_ for key, id_ in session.execute(lookup)}
    missing = wanted - found.keys()
    if missing:
        insert = pg_insert if _dialect(session) == "postgresql" else sqlite_insert
        rows = [{"run_id": run_id, "key": key} for key in sorted(missing)]
        session.execute(insert(Series).on_conflict_do_nothing(), rows)
        found = {key: id_ for key, id_ in session.execute(lookup)}
    return found


def _is_loss(key: str) -> bool:
    return key.rsplit("/", 1)[-1].endswith("loss")


@dataclass(frozen=True)
class IngestOutcome:
    accepted: int
    keys: list[str]
    diverged: bool


def ingest(
    session: Session, run_id: int, points: Sequence[MetricPoint], received_at: float
) -> IngestOutcome:
    """Upsert a batch atomically. A repeated (key, step) in one batch keeps the last value.

    NaN is stored as NULL (see `Point`). A non-finite loss marks the run diverged.
    """
    latest: dict[tuple[str, int], MetricPoint] = {(p.key, p.step): p for p in points}
    keys = sorted({key for key, _ in latest})
    ids = series_ids(session, run_id, keys)
    rows = [
        (
            ids[key],
            step,
            None if math.isnan(point.value) else point.value,
            received_at if point.wall_time is None else point.wall_time,
        )
        for (key, step), point in latest.items()
    ]
    cursor = _driver_cursor(session)
    try:
        cursor.executemany(_UPSERT_SQL.format(p=_placeholder(session)), rows)
    finally:
        cursor.close()
    diverged = any(_is_loss(p.key) and not math.isfinite(p.value) for p in latest.values())
    if diverged:
        mark = update(Run).where(Run.id == run_id, Run.diverged.is_(False))
        session.execute(mark.values(diverged=True))
    return IngestOutcome(accepted=len(rows), keys=keys, diverged=diverged)


def latest_values(
    session: Session, run_ids: Sequence[int]
) -> dict[int, dict[str, tuple[int, float | None]]]:
    """Each run's keys with (last step, value there), by index seeks on (series_id, step)."""
    if not run_ids:
        return {}
    inner = aliased(Point)
    last_step = select(func.max(inner.step)).where(inner.series_id == Series.id).scalar_subquery()
    statement = (
        select(Series.run_id, Series.key, Point.step, Point.value)
        .join(Point, Point.series_id == Series.id)
        .where(Series.run_id.in_(run_ids), Point.step == last_step)
    )
    out: dict[int, dict[str, tuple[int, float | None]]] = {run_id: {} for run_id in run_ids}
    for run_id, key, step, value in session.execute(statement):
        out[run_id][key] = (step, value)
    return out


@dataclass(frozen=True)
class SeriesSummary:
    key: str
    count: int
    first_step: int
    last_step: int
    last_value: float | None


def series_summaries(session: Session, run_id: int) -> list[SeriesSummary]:
    stats = (
        select(Series.key, func.count(), func.min(Point.step), func.max(Point.step))
        .join(Point, Point.series_id == Series.id)
        .where(Series.run_id == run_id)
        .group_by(Series.id, Series.key)
        .order_by(Series.key)
    )
    last = latest_values(session, [run_id])[run_id]
    return [
        SeriesSummary(key, count, first, final, last[key][1])
        for key, count, first, final in session.execute(stats)
    ]


def find_series_id(session: Session, run_id: int, key: str) -> int | None:
    statement = select(Series.id).where(Series.run_id == run_id, Series.key == key)
    return session.scalar(statement)


# NULL (stored NaN) comes back as the text 'NaN', which numpy reads as a float NaN.
_HISTORY_SQL = (
    "SELECT step, COALESCE(value, 'NaN'), wall_time FROM points "
    "WHERE series_id = {p} AND step >= {p} AND step <= {p} ORDER BY step"
)
_HISTORY_SQL_POSTGRES = _HISTORY_SQL.replace("'NaN'", "'NaN'::float8")
HISTORY_DTYPE = np.dtype([("step", np.int64), ("value", np.float64), ("wall_time", np.float64)])


def read_columns(session: Session, series_id: int, start_step: int, end_step: int) -> np.ndarray:
    """One series as a structured array, straight from the driver's cursor into numpy:
    at 100,000 rows, SQLAlchemy Row objects or Python lists per column would cost more
    than the query itself."""
    postgres = _dialect(session) == "postgresql"
    sql = (_HISTORY_SQL_POSTGRES if postgres else _HISTORY_SQL).format(p=_placeholder(session))
    cursor = _driver_cursor(session)
    try:
        cursor.execute(sql, (series_id, start_step, end_step))
        return np.fromiter(cursor, dtype=HISTORY_DTYPE)
    finally:
        cursor.close()
