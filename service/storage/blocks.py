"""Point blocks: the columnar, array-at-a-time home of a series' points.

A block holds up to BLOCK_STEPS consecutive steps of one series as three little-endian
arrays (step int64, value float64, wall_time float64) in one `point_blocks` row, with
its step range, count and finite extremes beside it. A 100,000-point history is ~25
blobs handed to numpy without a Python object per point, where row reads cost ~1 µs
per point (DESIGN.md, "Facts measured").

Ingest appends a training loop's next points straight to the tail block: rewriting a
~100 KB blob costs less than inserting 1,000 rows (measured with bench/ingest.py:
about 2x the points/s on SQLite and on PostgreSQL, whose MVCC copies the blob each
time but still writes less than it does for the rows and their index). A late point
(e.g. a retried job restarting at step 0) is merged into its block, newest value
winning.

Rows in `points` come from databases written before revision 0004, which kept each
series' tail as rows: steps below `series.sealed_until` live in blocks, steps at or
above it in rows, never both. Ingest moves a series' rows into blocks as the series
passes them, and reads take both.
"""

from __future__ import annotations

import numpy as np

from service.storage.driver import DriverCursor

BLOCK_STEPS = 4096
RECORD_DTYPE = np.dtype([("step", "<i8"), ("value", "<f8"), ("wall_time", "<f8")])

_BLOCK_SQL = "SELECT data FROM point_blocks WHERE series_id = {p} AND block = {p}"
_SAVE_BLOCK_SQL = (
    "INSERT INTO point_blocks "
    "(series_id, block, first_step, last_step, count, min_value, max_value, data) "
    "VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}) "
    "ON CONFLICT (series_id, block) DO UPDATE SET "
    "first_step = excluded.first_step, last_step = excluded.last_step, "
    "count = excluded.count, min_value = excluded.min_value, "
    "max_value = excluded.max_value, data = excluded.data"
)
# NULL (NaN) comes back as the text 'NaN' (a float8 on PostgreSQL); numpy reads it as NaN.
_ROWS_SQL = (
    "SELECT step, COALESCE(value, {nan}), wall_time FROM points "
    "WHERE series_id = {p} AND step >= {p} AND step <= {p} ORDER BY step"
)
_DELETE_ROWS_SQL = "DELETE FROM points WHERE series_id = {p} AND step >= {p} AND step <= {p}"
_BLOCKS_IN_RANGE_SQL = (
    "SELECT data FROM point_blocks WHERE series_id = {p} "
    "AND last_step >= {p} AND first_step <= {p} ORDER BY block"
)


def records_from_columns(
    steps: list[int], values: list[float], wall_times: list[float]
) -> np.ndarray:
    records = np.empty(len(steps), dtype=RECORD_DTYPE)
    records["step"] = steps
    records["value"] = values
    records["wall_time"] = wall_times
    return records


def _ascending(steps: np.ndarray) -> bool:
    return bool(np.all(steps[1:] > steps[:-1]))


def merge(older: np.ndarray, newer: np.ndarray) -> np.ndarray:
    """Union by step, sorted, each step once; where a step repeats, the later record
    (`newer` over `older`, later over earlier within `newer`) wins. `older` is a block:
    sorted, each step once."""
    if not len(newer):
        return older
    appends = not len(older) or older["step"][-1] < newer["step"][0]
    if appends and _ascending(newer["step"]):
        return np.concatenate([older, newer])  # the common case: a training loop's next batch
    both = np.concatenate([older, newer])
    # np.unique keeps the first occurrence; reversed, the first is the newest.
    _, first_in_reversed = np.unique(both["step"][::-1], return_index=True)
    return both[len(both) - 1 - first_in_reversed]


def _finite_extremes(values: np.ndarray) -> tuple[float | None, float | None]:
    finite = values[np.isfinite(values)]
    if not len(finite):
        return None, None
    return float(finite.min()), float(finite.max())


def write_block(cursor: DriverCursor, series_id: int, block: int, records: np.ndarray) -> None:
    stored = cursor.execute(_BLOCK_SQL, (series_id, block))
    older = np.frombuffer(stored[0][0], dtype=RECORD_DTYPE) if stored else records[:0]
    records = merge(older, records)
    steps = records["step"]
    params = (
        series_id,
        block,
        int(steps[0]),
        int(steps[-1]),
        len(records),
        *_finite_extremes(records["value"]),
        records.tobytes(),
    )
    cursor.execute(_SAVE_BLOCK_SQL, params)


def write_to_blocks(cursor: DriverCursor, series_id: int, records: np.ndarray) -> None:
    """Merge records (any order, repeats allowed) into the blocks their steps belong to."""
    blocks = records["step"] // BLOCK_STEPS
    if blocks[0] == blocks[-1] and _ascending(records["step"]):
        write_block(cursor, series_id, int(blocks[0]), records)
        return
    for block in np.unique(blocks).tolist():
        write_block(cursor, series_id, block, records[blocks == block])


def rows_in_range(cursor: DriverCursor, series_id: int, start: int, end: int) -> np.ndarray:
    return np.fromiter(cursor.stream(_ROWS_SQL, (series_id, start, end)), dtype=RECORD_DTYPE)


def seal_rows(cursor: DriverCursor, series_id: int, sealed_until: int, through: int) -> None:
    """Move the rows of steps sealed_until..through (inclusive) into their blocks."""
    records = rows_in_range(cursor, series_id, sealed_until, through)
    if len(records):
        write_to_blocks(cursor, series_id, records)
        cursor.execute(_DELETE_ROWS_SQL, (series_id, sealed_until, through))


def read_series(cursor: DriverCursor, series_id: int, start: int, end: int) -> np.ndarray:
    """Steps start..end (inclusive) of one series as records, blocks then rows."""
    blobs = cursor.execute(_BLOCKS_IN_RANGE_SQL, (series_id, start, end))
    rows = rows_in_range(cursor, series_id, start, end)
    if not blobs:
        return rows
    sealed = np.concatenate([np.frombuffer(blob, dtype=RECORD_DTYPE) for (blob,) in blobs])
    in_range = sealed[(sealed["step"] >= start) & (sealed["step"] <= end)]
    return np.concatenate([in_range, rows])
