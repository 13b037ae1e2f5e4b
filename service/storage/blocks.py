"""Sealed blocks: the columnar, array-at-a-time home of a series' older points.

New points land as rows in `points` (cheap upserts). Once a series has moved past a
block of BLOCK_STEPS steps, that block's rows are packed into one `point_blocks` row
holding three little-endian arrays (step int64, value float64, wall_time float64).
A 100,000-point history is then ~25 blobs handed to numpy without a Python object
per point, where row reads cost ~1 µs per point (DESIGN.md, "Facts measured").

Invariants:
- every step of a series lives either in a block (step < series.sealed_until) or in
  `points` (step >= sealed_until), never both;
- a block holds each step once, in order; a late point (step < sealed_until, e.g. a
  retried job restarting at step 0) is merged into its block, newest value winning;
- the series' highest step always stays in `points` (only whole blocks below the
  block of the batch's highest step are sealed), so "last value" reads stay row seeks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from service.storage.driver import DriverCursor

BLOCK_STEPS = 4096
RECORD_DTYPE = np.dtype([("step", "<i8"), ("value", "<f8"), ("wall_time", "<f8")])

_BLOCK_SQL = "SELECT data FROM point_blocks WHERE series_id = {p} AND block = {p}"
_SAVE_BLOCK_SQL = (
    "INSERT INTO point_blocks (series_id, block, first_step, last_step, count, data) "
    "VALUES ({p}, {p}, {p}, {p}, {p}, {p}) ON CONFLICT (series_id, block) DO UPDATE SET "
    "first_step = excluded.first_step, last_step = excluded.last_step, "
    "count = excluded.count, data = excluded.data"
)
# NULL (NaN) comes back as the text 'NaN' (a float8 on PostgreSQL); numpy reads it as NaN.
_ROWS_SQL = (
    "SELECT step, COALESCE(value, {nan}), wall_time FROM points "
    "WHERE series_id = {p} AND step >= {p} AND step <= {p} ORDER BY step"
)
_DELETE_ROWS_SQL = "DELETE FROM points WHERE series_id = {p} AND step >= {p} AND step < {p}"
_SEALED_SQL = "UPDATE series SET sealed_until = {p} WHERE id = {p}"
_BLOCKS_IN_RANGE_SQL = (
    "SELECT data FROM point_blocks WHERE series_id = {p} "
    "AND last_step >= {p} AND first_step <= {p} ORDER BY block"
)


def records_from_rows(rows: Sequence[tuple[int, int, float | None, float]]) -> np.ndarray:
    """(series_id, step, value|None, wall_time) rows as records; None becomes NaN."""
    records = np.empty(len(rows), dtype=RECORD_DTYPE)
    records["step"] = [row[1] for row in rows]
    records["value"] = [np.nan if row[2] is None else row[2] for row in rows]
    records["wall_time"] = [row[3] for row in rows]
    return records


def merge(older: np.ndarray, newer: np.ndarray) -> np.ndarray:
    """Union by step, sorted; where both hold a step, `newer` wins."""
    both = np.concatenate([older, newer])
    # np.unique keeps the first occurrence; reversed, the first is the newest.
    _, first_in_reversed = np.unique(both["step"][::-1], return_index=True)
    return both[len(both) - 1 - first_in_reversed]


def write_block(cursor: DriverCursor, series_id: int, block: int, records: np.ndarray) -> None:
    stored = cursor.execute(_BLOCK_SQL, (series_id, block))
    if stored:
        records = merge(np.frombuffer(stored[0][0], dtype=RECORD_DTYPE), records)
    else:
        records = merge(records[:0], records)
    params = (
        series_id,
        block,
        int(records["step"][0]),
        int(records["step"][-1]),
        len(records),
        records.tobytes(),
    )
    cursor.execute(_SAVE_BLOCK_SQL, params)


def write_late_points(cursor: DriverCursor, series_id: int, records: np.ndarray) -> None:
    """Points below the series' sealed boundary go into their blocks."""
    blocks = records["step"] // BLOCK_STEPS
    for block in np.unique(blocks).tolist():
        write_block(cursor, series_id, block, records[blocks == block])


def rows_in_range(cursor: DriverCursor, series_id: int, start: int, end: int) -> np.ndarray:
    return np.fromiter(cursor.stream(_ROWS_SQL, (series_id, start, end)), dtype=RECORD_DTYPE)


def seal(cursor: DriverCursor, series_id: int, sealed_until: int, highest_step: int) -> None:
    """Pack every whole block below the block of `highest_step` that still has rows."""
    boundary = (highest_step // BLOCK_STEPS) * BLOCK_STEPS
    if boundary <= sealed_until:
        return
    records = rows_in_range(cursor, series_id, sealed_until, boundary - 1)
    if len(records):
        write_late_points(cursor, series_id, records)
        cursor.execute(_DELETE_ROWS_SQL, (series_id, sealed_until, boundary))
    cursor.execute(_SEALED_SQL, (boundary, series_id))


def read_series(cursor: DriverCursor, series_id: int, start: int, end: int) -> np.ndarray:
    """Steps start..end (inclusive) of one series as records, blocks then rows."""
    blobs = cursor.execute(_BLOCKS_IN_RANGE_SQL, (series_id, start, end))
    rows = rows_in_range(cursor, series_id, start, end)
    if not blobs:
        return rows
    sealed = np.concatenate([np.frombuffer(blob, dtype=RECORD_DTYPE) for (blob,) in blobs])
    in_range = sealed[(sealed["step"] >= start) & (sealed["step"] <= end)]
    return np.concatenate([in_range, rows])
