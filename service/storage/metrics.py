"""Data access for metric points: batch upsert, series summaries, columnar history reads."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from momentum.contract import MetricPoint
from momentum.contract.metrics import MAX_STEP, better_direction
from service import events
from service.models import Point, PointBlock, PointChunk, Run, Series
from service.storage import blocks, zoom
from service.storage.driver import DriverCursor

# Ingest runs on the driver's cursor: at 1,000 points a request, SQLAlchemy's per-row
# parameter handling cost ~4x the insert itself (measured: 16 ms against 4 ms on
# SQLite). Only placeholders differ between SQLite and PostgreSQL.
_RUN_EXISTS_SQL = "SELECT 1 FROM runs WHERE id = {p}"
# PostgreSQL: batches for one run take turns from here on (before its series rows, the
# order deleting a run takes too), so two batches adding keys at once cannot pass the
# run's key limit together. FK checks of new series only share-lock the row.
_RUN_LOCKED_SQL = _RUN_EXISTS_SQL + " FOR NO KEY UPDATE"
_SERIES_SQL = (
    "SELECT key, id, sealed_until, last_step, last_value, tail_chunks "
    "FROM series WHERE run_id = {p}"
)
# PostgreSQL: concurrent batches for one run take turns appending and folding.
_SERIES_LOCKED_SQL = _SERIES_SQL + " FOR UPDATE"
_NEW_SERIES_SQL = "INSERT INTO series (run_id, key) VALUES ({p}, {p}) ON CONFLICT DO NOTHING"
_SERIES_TAIL_SQL = (
    "UPDATE series SET sealed_until = {p}, last_step = {p}, last_value = {p}, "
    "tail_chunks = {p} WHERE id = {p}"
)


@dataclass(frozen=True)
class _SeriesState:
    id: int
    sealed_until: int
    last_step: int | None
    last_value: float | None
    tail_chunks: int


class TooManyKeys(Exception):
    """A batch would take a run past MOMENTUM_MAX_KEYS_PER_RUN; nothing of it is stored."""

    def __init__(self, run_id: int, keys: int, limit: int) -> None:
        super().__init__(
            f"run {run_id} would have {keys} metric keys; the limit is {limit} "
            "(MOMENTUM_MAX_KEYS_PER_RUN): log fewer distinct keys"
        )
        self.limit = limit


def _run_series(
    cursor: DriverCursor, run_id: int, keys: Iterable[str], max_keys: int | None
) -> dict[str, _SeriesState]:
    """The run's series by key, creating missing ones for `keys` (TooManyKeys, before
    any write, when they would take the run past `max_keys`)."""
    sql = _SERIES_LOCKED_SQL if cursor.postgres else _SERIES_SQL

    def lookup() -> dict[str, _SeriesState]:
        return {key: _SeriesState(*state) for key, *state in cursor.execute(sql, (run_id,))}

    found = lookup()
    missing = sorted(set(keys) - found.keys())
    if max_keys is not None and len(found) + len(missing) > max_keys:
        raise TooManyKeys(run_id, len(found) + len(missing), max_keys)
    if missing:
        cursor.executemany(_NEW_SERIES_SQL, [(run_id, key) for key in missing])
        found = lookup()
    return found


def _store_series(
    writer: blocks.SeriesWriter, series: _SeriesState, records: np.ndarray
) -> tuple[int, tuple[int, int, float | None, int, int]]:
    """One series' part of a batch (sorted, each step once). Returns its last step now
    and the parameters of its series row's update."""
    highest = int(records["step"][-1])
    last_step, last_value = series.last_step, series.last_value
    if last_step is not None and series.sealed_until <= last_step:
        # Rows from before revision 0004: all of them move into blocks first.
        blocks.seal_rows(writer.cursor, series.id, series.sealed_until, MAX_STEP)
    tail_chunks = writer.write(series.id, last_step, series.tail_chunks, records)
    if last_step is None or highest >= last_step:
        last_step, last_value = highest, _nan_to_none(records["value"][-1])
    # sealed_until is exclusive, but the last step a point may have (MAX_STEP) plus one
    # would overflow the BIGINT column: there it stops at MAX_STEP (no row is ever added).
    boundary = max(series.sealed_until, min(last_step + 1, MAX_STEP))
    return last_step, (boundary, last_step, last_value, tail_chunks, series.id)


def _nan_to_none(value: np.float64) -> float | None:
    # NaN is stored as NULL (see `Point`): SQLite cannot store a NaN REAL.
    return None if value != value else float(value)


class _BatchColumns:
    """A batch split per key into step, value and wall-time lists, in one pass over
    its points (this loop runs 100,000 times for the largest batch)."""

    def __init__(self, keys: Iterable[str]) -> None:
        self.by_key: dict[str, tuple[list[int], list[float], list[float]]] = {
            key: ([], [], []) for key in keys
        }

    def add_all(self, points: Sequence[MetricPoint], now: float) -> None:
        by_key = self.by_key
        for point in points:
            steps, values, wall_times = by_key[point["key"]]
            steps.append(point["step"])
            value = point["value"]
            # "NaN", "Infinity", "-Infinity" arrive as text (see momentum.contract.values).
            values.append(float(value) if isinstance(value, str) else value)
            wall_time = point.get("wall_time")
            wall_times.append(now if wall_time is None else wall_time)

    def records(self, key: str) -> np.ndarray:
        return blocks.records_from_columns(*self.by_key[key])


@dataclass(frozen=True)
class PreparedBatch:
    """A batch as per-key records (sorted, each step once, the last repeat winning),
    made before the transaction so the write lock is held for database work alone."""

    records: dict[str, np.ndarray]
    diverged: bool


def prepare(points: Sequence[MetricPoint], received_at: float) -> PreparedBatch:
    keys = sorted({point["key"] for point in points})
    columns = _BatchColumns(keys)
    columns.add_all(points, received_at)
    records, diverged = {}, False
    for key in keys:
        found = columns.records(key)
        records[key] = blocks.merge(found[:0], found)
        diverged = diverged or (
            better_direction(key) == "min" and not np.isfinite(found["value"]).all()
        )
    return PreparedBatch(records, diverged)


@dataclass(frozen=True)
class IngestOutcome:
    accepted: int
    keys: list[str]
    diverged: bool
    last_steps: dict[str, int]


def ingest(
    session: Session,
    run_id: int,
    points: Sequence[MetricPoint],
    received_at: float,
    max_keys: int | None = None,
) -> IngestOutcome | None:
    """Upsert a batch in the session's transaction; None if the run does not exist.

    A repeated (key, step) in one batch keeps the last value. A non-finite loss marks
    the run diverged. The batch is announced as one `points` event. TooManyKeys if it
    would give the run more than `max_keys` keys.
    """
    return ingest_prepared(session, run_id, prepare(points, received_at), max_keys)


def ingest_prepared(
    session: Session, run_id: int, batch: PreparedBatch, max_keys: int | None = None
) -> IngestOutcome | None:
    """`ingest` of a batch made by `prepare`."""
    cursor = DriverCursor(session)
    last_steps: dict[str, int] = {}
    try:
        run_sql = _RUN_LOCKED_SQL if cursor.postgres else _RUN_EXISTS_SQL
        if not cursor.execute(run_sql, (run_id,)):
            return None
        series = _run_series(cursor, run_id, batch.records, max_keys)
        writer = blocks.SeriesWriter(cursor)
        updates = []
        for key, records in batch.records.items():
            last_steps[key], tail = _store_series(writer, series[key], records)
            updates.append(tail)
        writer.flush()
        cursor.executemany(_SERIES_TAIL_SQL, updates)
    finally:
        cursor.close()
    if batch.diverged:
        mark = update(Run).where(Run.id == run_id, Run.diverged.is_(False))
        if session.execute(mark.values(diverged=True).returning(Run.id)).first():
            events.record(session, "run", {"run_id": run_id, "diverged": True}, run_id=run_id)
    events.record_points(session, run_id, last_steps)
    accepted = sum(len(records) for records in batch.records.values())
    return IngestOutcome(
        accepted=accepted, keys=list(batch.records), diverged=batch.diverged, last_steps=last_steps
    )


def latest_values(
    session: Session, run_ids: Sequence[int]
) -> dict[int, dict[str, tuple[int, float | None]]]:
    """Each run's keys with (last step, value there), from the series rows alone."""
    if not run_ids:
        return {}
    statement = select(Series.run_id, Series.key, Series.last_step, Series.last_value).where(
        Series.run_id.in_(run_ids), Series.last_step.is_not(None)
    )
    out: dict[int, dict[str, tuple[int, float | None]]] = {run_id: {} for run_id in run_ids}
    for run_id, key, step, value in session.execute(statement.order_by(Series.key)):
        out[run_id][key] = (step, value)  # type: ignore[assignment]  # NULLs filtered out
    return out


_LARGEST_FLOAT = 1.7976931348623157e308


def value_extremes(
    session: Session, run_ids: Sequence[int]
) -> dict[int, dict[str, tuple[float | None, float | None]]]:
    """Each run's keys with the (lowest, highest) finite value ever stored, from the
    extremes kept beside blocks and chunks plus rows from before revision 0004: three
    grouped queries for any number of runs."""
    blocks_by_series, chunks_by_series = (
        select(Series.run_id, Series.key, func.min(piece.min_value), func.max(piece.max_value))
        .join(piece, piece.series_id == Series.id)
        .where(Series.run_id.in_(run_ids))
        .group_by(Series.id, Series.run_id, Series.key)
        for piece in (PointBlock, PointChunk)
    )
    rows_by_series = (
        select(Series.run_id, Series.key, func.min(Point.value), func.max(Point.value))
        .join(Point, Point.series_id == Series.id)
        .where(
            Series.run_id.in_(run_ids),
            Point.value.between(-_LARGEST_FLOAT, _LARGEST_FLOAT),  # finite only
        )
        .group_by(Series.id, Series.run_id, Series.key)
    )
    out: dict[int, dict[str, tuple[float | None, float | None]]] = {
        run_id: {} for run_id in run_ids
    }
    for statement in (blocks_by_series, chunks_by_series, rows_by_series):
        for run_id, key, low, high in session.execute(statement):
            known_low, known_high = out[run_id].get(key, (None, None))
            out[run_id][key] = (_lesser(known_low, low), _greater(known_high, high))
    return out


def _lesser(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


def _greater(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


@dataclass(frozen=True)
class SeriesSummary:
    key: str
    count: int
    first_step: int
    last_step: int
    last_value: float | None


def series_summaries(session: Session, run_id: int) -> list[SeriesSummary]:
    """Counts and step ranges over rows, blocks and chunks together (they never
    hold a step twice)."""
    in_rows = (
        select(Point.series_id, func.count(), func.min(Point.step))
        .join(Series, Point.series_id == Series.id)
        .where(Series.run_id == run_id)
        .group_by(Point.series_id)
    )
    in_blocks, in_chunks = (
        select(piece.series_id, func.sum(piece.count), func.min(piece.first_step))
        .join(Series, piece.series_id == Series.id)
        .where(Series.run_id == run_id)
        .group_by(piece.series_id)
        for piece in (PointBlock, PointChunk)
    )
    counts: dict[int, tuple[int, int]] = {}
    for statement in (in_rows, in_blocks, in_chunks):
        for series_id, count, first in session.execute(statement):
            known_count, known_first = counts.get(series_id, (0, first))
            counts[series_id] = (known_count + count, min(known_first, first))
    series = select(Series.id, Series.key, Series.last_step, Series.last_value).where(
        Series.run_id == run_id, Series.last_step.is_not(None)
    )
    return [
        SeriesSummary(key, *counts[series_id], last_step, last_value)  # type: ignore[arg-type]
        for series_id, key, last_step, last_value in session.execute(series.order_by(Series.key))
    ]


def find_series_id(session: Session, run_id: int, key: str) -> int | None:
    statement = select(Series.id).where(Series.run_id == run_id, Series.key == key)
    return session.scalar(statement)


def read_columns(session: Session, series_id: int, start_step: int, end_step: int) -> np.ndarray:
    """Steps start..end of one series as a structured array (step, value, wall_time),
    NaN where storage holds NULL: sealed blocks straight into numpy, recent rows from
    the driver's cursor (never SQLAlchemy Row objects: at 100,000 points those would
    cost more than the query)."""
    cursor = DriverCursor(session)
    try:
        return blocks.read_series(cursor, series_id, start_step, end_step)
    finally:
        cursor.close()


def read_downsampled(
    session: Session, series_ids: Sequence[int], start_step: int, end_step: int, max_points: int
) -> list[tuple[np.ndarray, int]]:
    """Steps start..end of each series, downsampled to at most `max_points` from the zoom
    summaries (storage/zoom.py), and how many points the range holds; all of them in
    one go (a query per series costs about what its summaries do)."""
    cursor = DriverCursor(session)
    try:
        return zoom.read_downsampled(cursor, series_ids, start_step, end_step, max_points)
    finally:
        cursor.close()


def read_window(
    session: Session, series_id: int, start_step: int, points: int
) -> tuple[np.ndarray, int]:
    """About `points` points of one series from `start_step` on (see
    `blocks.window_end`), and the last step the window covers: read the next window
    from one past it, until it is MAX_STEP."""
    cursor = DriverCursor(session)
    try:
        end = blocks.window_end(cursor, series_id, start_step, points)
        return blocks.read_series(cursor, series_id, start_step, end), end
    finally:
        cursor.close()
