"""Point blocks and chunks: the columnar, array-at-a-time home of a series' points.

A block holds up to BLOCK_STEPS consecutive steps of one series as three little-endian
arrays (step int64, value float64, wall_time float64) in one `point_blocks` row, with
its step range, count and finite extremes beside it. A 100,000-point history is ~25
blobs handed to numpy without a Python object per point, where row reads cost ~1 µs
per point (docs/design.md, "Facts measured").

A training loop's next points (every step above the series' last one) are appended as
a small `point_chunks` row of the same layout: the cost of a batch is its own size.
Rewriting the tail block instead cost up to ~100 KB per series per batch (bench/load.py:
32 writers of 200-point batches spent most of the write lock doing it; PostgreSQL kept
a dead ~100 KB copy each time). The chunks of a block fold into its row when the series
moves past the block, or when CHUNK_LIMIT of them have gathered (tiny batches), so each
point is rewritten about once more, not once per batch.

What keeps reads simple: the pieces of a series (block rows and chunks) never overlap.
A chunk only ever holds steps above everything stored for its series, and a block row
is only ever written by `fold`, which takes that block's chunks into it. So a read
concatenates the pieces in step order with no merging. A late point (e.g. a retried
job restarting at step 0) is folded into its block, newest value winning.

Rows in `points` come from databases written before revision 0004, which kept each
series' tail as rows: steps below `series.sealed_until` live in blocks and chunks,
steps at or above it in rows, never both. The first ingest into such a series moves
its rows into blocks, and reads take both.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from momentum.contract.metrics import MAX_STEP
from service.storage import cells
from service.storage.driver import DriverCursor

BLOCK_STEPS = 4096
# Chunks a tail block gathers before they fold into its row: a reader of a tail made
# of 1-point batches reads at most this many small blobs.
CHUNK_LIMIT = 64
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
_SAVE_SUMMARIES_SQL = (
    "INSERT INTO point_summaries (series_id, block, cells, summary) VALUES ({p}, {p}, {p}, {p}) "
    "ON CONFLICT (series_id, block) DO UPDATE SET "
    "cells = excluded.cells, summary = excluded.summary"
)
_CHUNKS_SQL = (
    "SELECT data FROM point_chunks WHERE series_id = {p} "
    "AND first_step >= {p} AND first_step <= {p} ORDER BY first_step"
)
_DELETE_CHUNKS_SQL = (
    "DELETE FROM point_chunks WHERE series_id = {p} AND first_step >= {p} AND first_step <= {p}"
)
_ADD_CHUNK_SQL = (
    "INSERT INTO point_chunks "
    "(series_id, first_step, last_step, count, min_value, max_value, data) "
    "VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p})"
)
# NULL (NaN) comes back as the text 'NaN' (a float8 on PostgreSQL); numpy reads it as NaN.
_ROWS_SQL = (
    "SELECT step, COALESCE(value, {nan}), wall_time FROM points "
    "WHERE series_id = {p} AND step >= {p} AND step <= {p} ORDER BY step"
)
_DELETE_ROWS_SQL = "DELETE FROM points WHERE series_id = {p} AND step >= {p} AND step <= {p}"
# Pieces never overlap and a series' chunks hold steps above all its blocks, so its
# blocks in order, then its chunks in order, are its points in order. Two queries, each
# in primary-key order: one UNION ALL ... ORDER BY had SQLite sort the ~100 KB blobs
# (6x the cost of reading them). Both are ranges of their primary keys: a block's
# number is its steps // BLOCK_STEPS and a chunk never crosses its block's start, so a
# read of a sparse series (a block per point) reads the pieces in range, not every
# piece of the series.
_BLOCKS_IN_RANGE_SQL = (
    "SELECT data FROM point_blocks WHERE series_id = {p} "
    "AND block >= {p} AND block <= {p} AND last_step >= {p} AND first_step <= {p} "
    "ORDER BY block"
)
_CHUNKS_IN_RANGE_SQL = (
    "SELECT data FROM point_chunks WHERE series_id = {p} "
    "AND first_step >= {p} AND first_step <= {p} AND last_step >= {p} ORDER BY first_step"
)
# Keyset windows (see `window_end`): the next blocks in order, without their data.
_NEXT_BLOCKS_SQL = (
    "SELECT last_step, count FROM point_blocks WHERE series_id = {p} "
    "AND block >= {p} AND last_step >= {p} ORDER BY block LIMIT {p}"
)
_NTH_ROW_SQL = (
    "SELECT step FROM points WHERE series_id = {p} AND step >= {p} ORDER BY step LIMIT 1 OFFSET {p}"
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
    if not len(older) and _ascending(newer["step"]):
        return newer  # a batch's own points, in order (structured concatenate is slow)
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


def _piece(series_id: int, records: np.ndarray) -> tuple[Any, ...]:
    """first_step, last_step, count, min_value, max_value, data of sorted records."""
    steps = records["step"]
    extremes = _finite_extremes(records["value"])
    return (series_id, int(steps[0]), int(steps[-1]), len(records), *extremes, records.tobytes())


def _block_range(block: int) -> tuple[int, int]:
    # Inclusive: the last block's end is 2**63 - 1, one past it would overflow BIGINT.
    return block * BLOCK_STEPS, block * BLOCK_STEPS + (BLOCK_STEPS - 1)


def _save_block(cursor: DriverCursor, series_id: int, block: int, records: np.ndarray) -> None:
    """A block row and its zoom summaries (see cells.py), in the same transaction."""
    series, *rest = _piece(series_id, records)
    cursor.execute(_SAVE_BLOCK_SQL, (series, block, *rest))
    cursor.execute(_SAVE_SUMMARIES_SQL, (series, block, *cells.block_summaries(records)))


def fold(cursor: DriverCursor, series_id: int, block: int, records: np.ndarray) -> None:
    """Merge `records` (sorted, each step once) into the block: its row, its chunks and
    the records become its row, newest winning; the chunks go."""
    low, high = _block_range(block)
    stored = cursor.execute(_BLOCK_SQL, (series_id, block))
    chunks = cursor.execute(_CHUNKS_SQL, (series_id, low, high))
    if not chunks and not len(records):
        return  # nothing to fold in
    pieces = [np.frombuffer(data, dtype=RECORD_DTYPE) for (data,) in stored + chunks]
    if chunks:
        cursor.execute(_DELETE_CHUNKS_SQL, (series_id, low, high))
    older = np.concatenate(pieces) if pieces else records[:0]
    merged = merge(older, records)
    if len(merged):
        _save_block(cursor, series_id, block, merged)


class SeriesWriter:
    """Writes batches into series (see the module docstring), keeping the chunk inserts
    of the whole batch for one executemany (pipelined on PostgreSQL)."""

    def __init__(self, cursor: DriverCursor) -> None:
        self.cursor = cursor
        self.chunks: list[tuple[Any, ...]] = []

    def write(
        self, series_id: int, last_step: int | None, tail_chunks: int, records: np.ndarray
    ) -> int:
        """Store `records` (sorted, each step once) into a series whose highest step is
        `last_step` and whose tail block holds `tail_chunks` chunks; returns how many
        chunks the series' tail block holds afterwards."""
        tail = None if last_step is None else last_step // BLOCK_STEPS
        if last_step is None or records["step"][0] > last_step:
            return self._append(series_id, tail, tail_chunks, records)
        return self._merge(series_id, tail, tail_chunks, records)

    def _append(
        self, series_id: int, tail: int | None, tail_chunks: int, records: np.ndarray
    ) -> int:
        """Every step is above the series' last: blocks past the tail are new."""
        blocks = records["step"] // BLOCK_STEPS
        newest = int(blocks[-1])
        if blocks[0] != newest:
            for block in np.unique(blocks[blocks < newest]).tolist():
                part = records[blocks == block]
                if block == tail:
                    fold(self.cursor, series_id, block, part)
                else:
                    _save_block(self.cursor, series_id, block, part)
            records = records[blocks == newest]
        if tail is not None and tail < newest:
            if tail < int(blocks[0]):  # the old tail got no records: seal it as it is
                fold(self.cursor, series_id, tail, records[:0])
            tail_chunks = 0
        if tail_chunks >= CHUNK_LIMIT:
            fold(self.cursor, series_id, newest, records)
            return 0
        self.chunks.append(_piece(series_id, records))
        return tail_chunks + 1

    def _merge(
        self, series_id: int, tail: int | None, tail_chunks: int, records: np.ndarray
    ) -> int:
        """Late or repeated steps: fold every block they touch, and the old tail if the
        series moves past it, so chunks stay in the tail block alone."""
        blocks = records["step"] // BLOCK_STEPS
        touched = np.unique(blocks).tolist()
        for block in touched:
            fold(self.cursor, series_id, block, records[blocks == block])
        newest = max(touched[-1], tail if tail is not None else touched[-1])
        if tail is not None and tail != newest and tail not in touched:
            fold(self.cursor, series_id, tail, records[:0])
        return 0 if newest in touched else tail_chunks

    def flush(self) -> None:
        if self.chunks:
            self.cursor.executemany(_ADD_CHUNK_SQL, self.chunks)
            self.chunks = []


def write_to_blocks(cursor: DriverCursor, series_id: int, records: np.ndarray) -> None:
    """Fold records (any order, repeats allowed) into the blocks their steps belong to."""
    records = merge(records[:0], records)
    blocks = records["step"] // BLOCK_STEPS
    for block in np.unique(blocks).tolist():
        fold(cursor, series_id, block, records[blocks == block])


def rows_in_range(cursor: DriverCursor, series_id: int, start: int, end: int) -> np.ndarray:
    return np.fromiter(cursor.stream(_ROWS_SQL, (series_id, start, end)), dtype=RECORD_DTYPE)


def seal_rows(cursor: DriverCursor, series_id: int, sealed_until: int, through: int) -> None:
    """Move the rows of steps sealed_until..through (inclusive) into their blocks."""
    records = rows_in_range(cursor, series_id, sealed_until, through)
    if len(records):
        write_to_blocks(cursor, series_id, records)
        cursor.execute(_DELETE_ROWS_SQL, (series_id, sealed_until, through))


def _pieces(cursor: DriverCursor, series_id: int, start: int, end: int) -> list[bytes]:
    first_block, last_block = start // BLOCK_STEPS, end // BLOCK_STEPS
    in_blocks = (series_id, first_block, last_block, start, end)
    in_chunks = (series_id, first_block * BLOCK_STEPS, end, start)
    return [
        blob
        for sql, params in ((_BLOCKS_IN_RANGE_SQL, in_blocks), (_CHUNKS_IN_RANGE_SQL, in_chunks))
        for (blob,) in cursor.execute(sql, params)
    ]


# Block headers one window reads at most: a sparse series (one point a block) then takes
# a transaction per this many points, where a dense one takes one per `points`.
WINDOW_BLOCKS = 4096


def window_end(cursor: DriverCursor, series_id: int, start: int, points: int) -> int:
    """The last step of a window from `start` holding about `points` stored points (at
    least one block's worth, at most `points` + a block + the tail's chunks): found
    from the next blocks and rows in key order, so a gap of any width costs nothing."""
    first_block = start // BLOCK_STEPS
    headers = cursor.execute(_NEXT_BLOCKS_SQL, (series_id, first_block, start, WINDOW_BLOCKS))
    end = headers[-1][0] if len(headers) == WINDOW_BLOCKS else MAX_STEP
    held = 0
    for last_step, count in headers:
        held += count
        if held >= points:
            end = min(end, last_step)
            break
    # Rows from before revision 0004: the window stops short of the row one past budget.
    past_budget = cursor.execute(_NTH_ROW_SQL, (series_id, start, points))
    if past_budget:
        end = min(end, past_budget[0][0] - 1)
    return end


def read_series(cursor: DriverCursor, series_id: int, start: int, end: int) -> np.ndarray:
    """Steps start..end (inclusive) of one series as records, pieces then rows."""
    pieces = _pieces(cursor, series_id, start, end)
    rows = rows_in_range(cursor, series_id, start, end)
    if not pieces:
        return rows
    # One buffer, one array: numpy's concatenate of structured arrays costs ~40 µs an
    # array, and a sparse series has a piece per point. bytearray: the result is writable,
    # and bytearray's own join copies the blobs once (bytes' join, then a bytearray of
    # it, copied every point twice).
    stored = np.frombuffer(bytearray().join(pieces), dtype=RECORD_DTYPE)
    if stored["step"][0] < start or stored["step"][-1] > end:
        stored = stored[(stored["step"] >= start) & (stored["step"] <= end)]
    return np.concatenate([stored, rows]) if len(rows) else stored
