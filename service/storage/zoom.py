"""Downsampled reads from zoom summaries: touch summaries, not points.

The downsampling contract (service/downsample.py): at most `max_points` points, each
bucket keeping its extremes, a bucket holding a NaN/±Infinity showing it. Buckets are
runs of consecutive *cells* at one zoom level (see cells.py): points (level 0), a
block's points 64 at a time by position (level 1), whole blocks (level 2). A level's
cells in a step window are the non-empty parts of its cells inside the window. For B =
max_points // 2 buckets the read takes the coarsest level with at least B cells in the
window (level 0 when even level 1 has fewer) and cuts its C cells into B runs evenly
(at level 0 that is the point-by-point bucketing downsample.py always did).

Everything is a function of the series' points alone (a block is steps // BLOCK_STEPS,
a cell a position in it), so how the points happen to be stored changes nothing:
blocks whose summaries cannot be used as they stand (cut by the window, holding the
tail's chunks, or not yet backfilled) are read as points and summarized on the spot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from service.downsample import downsample_indices
from service.storage import cells as zoom_cells
from service.storage.blocks import BLOCK_STEPS, RECORD_DTYPE, read_series
from service.storage.cells import CELL_POINTS, SUMMARY_DTYPE
from service.storage.driver import DriverCursor

# Every query reads all the series of one request at once (`{ids}`: their placeholders):
# a compare of 100 runs makes five queries, not five hundred.
_LEGACY_ROWS_SQL = (
    "SELECT series_id, MIN(step), MAX(step) FROM points WHERE series_id IN ({ids}) "
    "AND step >= {p} AND step <= {p} GROUP BY series_id"
)
_HEADERS_SQL = (
    "SELECT b.series_id, b.block, b.first_step, b.last_step, b.count, s.block IS NOT NULL "
    "FROM point_blocks b LEFT JOIN point_summaries s "
    "ON s.series_id = b.series_id AND s.block = b.block "
    "WHERE b.series_id IN ({ids}) AND b.block >= {p} AND b.block <= {p} "
    "AND b.last_step >= {p} AND b.first_step <= {p} ORDER BY b.series_id, b.block"
)
_CHUNK_STEPS_SQL = (
    "SELECT series_id, first_step FROM point_chunks WHERE series_id IN ({ids}) "
    "AND first_step >= {p} AND first_step <= {p} AND last_step >= {p}"
)
_SUMMARIES_SQL = (
    "SELECT series_id, block, {column} FROM point_summaries WHERE series_id IN ({ids}) "
    "AND block >= {p} AND block <= {p}"
)
# The blocks read as points, whole (a cell is a position in its block): by (series, block).
_BLOCK_DATA_SQL = (
    "SELECT series_id, block, data FROM point_blocks WHERE (series_id, block) IN ({pairs})"
)
_BLOCK_CHUNKS_SQL = (
    "SELECT series_id, first_step, data FROM point_chunks WHERE series_id IN ({ids}) "
    "AND first_step >= {p} AND first_step <= {p} ORDER BY series_id, first_step"
)
_ANY_ROW_SQL = "SELECT 1 FROM points WHERE series_id = {p} AND step >= {p} AND step <= {p} LIMIT 1"
# Bound on the placeholders of one statement (SQLite allows 32,766; PostgreSQL 65,535).
_IDS_PER_QUERY = 500


@dataclass
class _Plan:
    """A window's blocks: those answered by stored summaries (with their counts) and
    those read as points (their in-window records, and each record's level-1 cell)."""

    stored: dict[int, int] = field(default_factory=dict)
    read: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.stored.values()) + sum(len(r) for r, _ in self.read.values())

    def cell_counts(self) -> tuple[int, int]:
        """How many level-1 and level-2 cells the window holds."""
        level_1 = sum(-(-count // CELL_POINTS) for count in self.stored.values())
        # A read block's cells ascend: count where they change.
        level_1 += sum(1 + int(np.count_nonzero(np.diff(cell))) for _, cell in self.read.values())
        return level_1, len(self.stored) + len(self.read)


def _in_batches(
    cursor: DriverCursor, template: str, series_ids: Sequence[int], params: Sequence[Any]
) -> list[Any]:
    """`template`'s rows for all of `series_ids` (its `{ids}`), a bounded batch at a time."""
    rows: list[Any] = []
    for at in range(0, len(series_ids), _IDS_PER_QUERY):
        batch = list(series_ids[at : at + _IDS_PER_QUERY])
        sql = template.replace("{ids}", ", ".join(["{p}"] * len(batch)))
        rows += cursor.execute(sql, (*batch, *params))
    return rows


def _plans(
    cursor: DriverCursor, series_ids: Sequence[int], start: int, end: int
) -> dict[int, _Plan | None]:
    """Each series' plan of the window; None when the window holds rows from before
    revision 0004 (that series is read as points)."""
    first, last = start // BLOCK_STEPS, end // BLOCK_STEPS
    around = (first * BLOCK_STEPS, last * BLOCK_STEPS + BLOCK_STEPS - 1)
    near, in_window = _series_with_rows(cursor, series_ids, start, end, around)
    planned = [series_id for series_id in series_ids if series_id not in in_window]
    plans = {series_id: _Plan() for series_id in planned}
    window = (first, last, start, end)
    headers = _in_batches(cursor, _HEADERS_SQL, planned, window)
    as_points: dict[int, set[int]] = {series_id: set() for series_id in planned}
    for series_id, step in _in_batches(cursor, _CHUNK_STEPS_SQL, planned, (around[0], end, start)):
        as_points[series_id].add(step // BLOCK_STEPS)
    for series_id, block, low, high, count, summarized in headers:
        if summarized and low >= start and high <= end and block not in as_points[series_id]:
            plans[series_id].stored[block] = count
        else:
            as_points[series_id].add(block)
    whole = _read_whole_blocks(cursor, as_points, near)
    for (series_id, block), records in sorted(whole.items()):
        inside = (records["step"] >= start) & (records["step"] <= end)
        if inside.any():
            cell = np.arange(len(records)) // CELL_POINTS
            plans[series_id].read[block] = (records[inside], cell[inside])
    return {series_id: plans.get(series_id) for series_id in series_ids}


def _series_with_rows(
    cursor: DriverCursor, series_ids: Sequence[int], start: int, end: int, around: tuple[int, int]
) -> tuple[set[int], set[int]]:
    """The series with rows from before revision 0004 in the window's blocks, and those
    with such rows inside the window itself."""
    near = {
        series_id: (low, high)
        for series_id, low, high in _in_batches(cursor, _LEGACY_ROWS_SQL, series_ids, around)
    }
    inside = {
        series_id
        for series_id, (low, high) in near.items()
        if low <= end and high >= start and cursor.execute(_ANY_ROW_SQL, (series_id, start, end))
    }
    return set(near), inside


def _read_whole_blocks(
    cursor: DriverCursor, wanted: dict[int, set[int]], with_rows: set[int]
) -> dict[tuple[int, int], np.ndarray]:
    """The points of each wanted (series, block), whole: its block row, then its chunks
    (a series' chunks hold steps above its block rows, in first_step order). A series
    with rows from before revision 0004 near the window reads them with `read_series`."""
    out: dict[tuple[int, int], np.ndarray] = {}
    for series_id in with_rows & wanted.keys():
        for block in wanted.pop(series_id):
            low = block * BLOCK_STEPS
            out[series_id, block] = read_series(cursor, series_id, low, low + BLOCK_STEPS - 1)
    pairs = [(series_id, block) for series_id, blocks in wanted.items() for block in blocks]
    if not pairs:
        return out
    pieces: dict[tuple[int, int], list[bytes]] = {pair: [] for pair in pairs}
    for at in range(0, len(pairs), _IDS_PER_QUERY // 2):
        batch = pairs[at : at + _IDS_PER_QUERY // 2]
        sql = _BLOCK_DATA_SQL.replace("{pairs}", ", ".join(["({p}, {p})"] * len(batch)))
        for series_id, block, blob in cursor.execute(sql, [v for pair in batch for v in pair]):
            pieces[series_id, block].append(blob)
    lowest = min(block for _, block in pairs) * BLOCK_STEPS
    highest = max(block for _, block in pairs) * BLOCK_STEPS + BLOCK_STEPS - 1
    with_blocks = sorted({series_id for series_id, _ in pairs})
    chunks = _in_batches(cursor, _BLOCK_CHUNKS_SQL, with_blocks, (lowest, highest))
    for series_id, first_step, blob in chunks:
        if (series_id, first_step // BLOCK_STEPS) in pieces:
            pieces[series_id, first_step // BLOCK_STEPS].append(blob)
    for pair, blobs in pieces.items():
        out[pair] = np.frombuffer(bytearray().join(blobs), dtype=RECORD_DTYPE)
    return out


def _read_cells(plan: _Plan, level: int) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """The read blocks' points as point summaries and where each of their cells starts."""
    out = []
    for block, (records, cell) in plan.read.items():
        if level == 2:
            starts = np.zeros(1, dtype=np.int64)
        else:
            starts = np.flatnonzero(np.diff(cell, prepend=-1))
        out.append((block, zoom_cells.of_points(records), starts))
    return out


def _starts_end_to_end(lengths: Sequence[int], starts: Sequence[np.ndarray]) -> np.ndarray:
    """Each piece's group starts, shifted to where the piece begins once the pieces (of
    `lengths`) lie end to end: one `combine` then serves all of them."""
    offsets = np.cumsum([0, *lengths[:-1]])
    return np.concatenate([own + offset for own, offset in zip(starts, offsets, strict=True)])


def _combined(pieces: list[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
    """`combine` of each (summaries, starts) piece, in one call for all of them."""
    if not pieces:
        return []
    starts = _starts_end_to_end([len(s) for s, _ in pieces], [own for _, own in pieces])
    # One buffer: numpy's concatenate of structured arrays costs ~15 µs an array.
    joined = b"".join(summaries.tobytes() for summaries, _ in pieces)
    whole = zoom_cells.combine(np.frombuffer(joined, SUMMARY_DTYPE), starts)
    return np.split(whole, np.cumsum([len(own) for _, own in pieces])[:-1])


def _window_cells(
    cursor: DriverCursor, plans: dict[int, _Plan], level: int
) -> tuple[np.ndarray, list[int]]:
    """The window cells at `level` of every planned series, each series' in step order and
    the series in `plans` order, as one summary array; and how many cells each has."""
    pieces: dict[int, list[tuple[int, bytes]]] = {series_id: [] for series_id in plans}
    reads = [
        (series_id, block, summaries, starts)
        for series_id, plan in plans.items()
        for block, summaries, starts in _read_cells(plan, level)
    ]
    summarized = _combined([(summaries, starts) for _, _, summaries, starts in reads])
    for (series_id, block, _, _), cells in zip(reads, summarized, strict=True):
        pieces[series_id].append((block, cells.tobytes()))
    stored = [series_id for series_id, plan in plans.items() if plan.stored]
    if stored:
        blocks = [block for series_id in stored for block in plans[series_id].stored]
        sql = _SUMMARIES_SQL.replace("{column}", "summary" if level == 2 else "cells")
        for series_id, block, blob in _in_batches(cursor, sql, stored, (min(blocks), max(blocks))):
            if block in plans[series_id].stored:
                pieces[series_id].append((block, blob))
    blobs, counts = [], []
    for found in pieces.values():
        found.sort(key=lambda piece: piece[0])
        blobs += [blob for _, blob in found]
        counts.append(sum(len(blob) for _, blob in found) // SUMMARY_DTYPE.itemsize)
    return np.frombuffer(b"".join(blobs), SUMMARY_DTYPE), counts


def _part(summaries: np.ndarray, part: str) -> np.ndarray:
    out = np.empty(len(summaries), dtype=RECORD_DTYPE)
    out["step"] = summaries[f"{part}_step"]
    out["value"] = summaries[f"{part}_value"]
    out["wall_time"] = summaries[f"{part}_wall"]
    return out


def bucket_points(buckets: np.ndarray, series: int, max_points: int) -> list[np.ndarray]:
    """The points each series' buckets show, in step order (`buckets` holds `series` runs
    of as many buckets): each bucket's low (when it has a finite value), its first
    NaN/±Infinity, and its high when it holds no NaN/±Infinity; with max_points 1, the
    one bucket's first NaN/±Infinity, else its low."""
    bad = buckets["has_bad"].astype(bool)
    if max_points == 1:
        picks = _part(buckets, "low")
        picks[bad] = _part(buckets[bad], "bad")
        return np.split(picks, series)
    owner = np.repeat(np.arange(series), len(buckets) // series)
    finite = buckets["has_finite"].astype(bool)
    picks = np.concatenate(
        [_part(buckets[finite], "low"), _part(buckets[bad], "bad"), _part(buckets[~bad], "high")]
    )
    owners = np.concatenate([owner[finite], owner[bad], owner[~bad]])
    order = np.lexsort((picks["step"], owners))  # stable: low, bad, high on a tie
    picks, owners = picks[order], owners[order]
    distinct = np.ones(len(picks), dtype=bool)
    # A low that is also the high (same step, same series) shows once.
    distinct[1:] = (picks["step"][1:] != picks["step"][:-1]) | (owners[1:] != owners[:-1])
    picks, owners = picks[distinct], owners[distinct]
    return np.split(picks, np.searchsorted(owners, np.arange(1, series)))


def _level(plan: _Plan, buckets: int) -> int:
    level_1, level_2 = plan.cell_counts()
    return 2 if level_2 >= buckets else 1 if level_1 >= buckets else 0


def read_downsampled(
    cursor: DriverCursor, series_ids: Sequence[int], start: int, end: int, max_points: int
) -> list[tuple[np.ndarray, int]]:
    """Steps start..end (inclusive) of each series downsampled to at most `max_points`
    points (all of them when they fit), and how many points the window holds. The
    series are read together: a few queries and one `combine` for all of them."""
    wanted = list(dict.fromkeys(series_ids))
    plans = _plans(cursor, wanted, start, end)
    buckets = max(1, max_points // 2)
    answers: dict[int, tuple[np.ndarray, int]] = {}
    by_level: dict[int, dict[int, _Plan]] = {1: {}, 2: {}}
    for series_id in wanted:
        plan = plans[series_id]
        level = 0 if plan is None or plan.total <= max_points else _level(plan, buckets)
        if plan is None or level == 0:
            answers[series_id] = _points(cursor, series_id, start, end, max_points)
        else:
            by_level[level][series_id] = plan
    for level, planned in by_level.items():
        if not planned:
            continue
        cells, counts = _window_cells(cursor, planned, level)
        edges = [np.linspace(0, count, buckets + 1).astype(np.int64)[:-1] for count in counts]
        starts = _starts_end_to_end(counts, edges)
        shown = bucket_points(zoom_cells.combine(cells, starts), len(planned), max_points)
        for (series_id, plan), points in zip(planned.items(), shown, strict=True):
            answers[series_id] = (points, plan.total)
    return [answers[series_id] for series_id in series_ids]


def _points(
    cursor: DriverCursor, series_id: int, start: int, end: int, max_points: int
) -> tuple[np.ndarray, int]:
    """A window read as points, downsampled point by point when they do not fit."""
    records = read_series(cursor, series_id, start, end)
    if len(records) <= max_points:
        return records, len(records)
    return records[downsample_indices(records["value"], max_points)], len(records)
