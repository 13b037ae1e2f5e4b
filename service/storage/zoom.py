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

from dataclasses import dataclass, field

import numpy as np

from service.downsample import downsample_indices
from service.storage import cells as zoom_cells
from service.storage.blocks import BLOCK_STEPS, RECORD_DTYPE, read_series
from service.storage.cells import CELL_POINTS, SUMMARY_DTYPE
from service.storage.driver import DriverCursor

_HEADERS_SQL = (
    "SELECT b.block, b.first_step, b.last_step, b.count, s.block IS NOT NULL "
    "FROM point_blocks b LEFT JOIN point_summaries s "
    "ON s.series_id = b.series_id AND s.block = b.block "
    "WHERE b.series_id = {p} AND b.block >= {p} AND b.block <= {p} "
    "AND b.last_step >= {p} AND b.first_step <= {p} ORDER BY b.block"
)
_CHUNK_STEPS_SQL = (
    "SELECT first_step FROM point_chunks WHERE series_id = {p} "
    "AND first_step >= {p} AND first_step <= {p} AND last_step >= {p}"
)
_ANY_ROW_SQL = "SELECT 1 FROM points WHERE series_id = {p} AND step >= {p} AND step <= {p} LIMIT 1"
_SUMMARIES_SQL = (
    "SELECT block, {column} FROM point_summaries WHERE series_id = {p} "
    "AND block >= {p} AND block <= {p} ORDER BY block"
)


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


def _plan(cursor: DriverCursor, series_id: int, start: int, end: int) -> _Plan | None:
    """None when the window holds rows from before revision 0004 (read those as points)."""
    if cursor.execute(_ANY_ROW_SQL, (series_id, start, end)):
        return None
    first, last = start // BLOCK_STEPS, end // BLOCK_STEPS
    headers = cursor.execute(_HEADERS_SQL, (series_id, first, last, start, end))
    chunks = cursor.execute(_CHUNK_STEPS_SQL, (series_id, first * BLOCK_STEPS, end, start))
    as_points = {step // BLOCK_STEPS for (step,) in chunks}
    plan = _Plan()
    for block, low, high, count, summarized in headers:
        if summarized and low >= start and high <= end and block not in as_points:
            plan.stored[block] = count
        else:
            as_points.add(block)
    for block in sorted(as_points):
        lowest = block * BLOCK_STEPS
        records = read_series(cursor, series_id, lowest, lowest + BLOCK_STEPS - 1)
        inside = (records["step"] >= start) & (records["step"] <= end)
        if inside.any():
            cell = np.arange(len(records)) // CELL_POINTS
            plan.read[block] = (records[inside], cell[inside])
    return plan


def _summaries_of_read(records: np.ndarray, cell: np.ndarray, level: int) -> np.ndarray:
    if level == 2:
        starts = np.zeros(1, dtype=np.int64)
    else:
        starts = np.flatnonzero(np.diff(cell, prepend=-1))
    return zoom_cells.combine(zoom_cells.of_points(records), starts)


def _window_cells(cursor: DriverCursor, series_id: int, plan: _Plan, level: int) -> np.ndarray:
    """The window's cells at `level` in step order, as one summary array."""
    pieces: list[tuple[int, bytes]] = [
        (block, _summaries_of_read(records, cell, level).tobytes())
        for block, (records, cell) in plan.read.items()
    ]
    if plan.stored:
        column = "summary" if level == 2 else "cells"
        sql = _SUMMARIES_SQL.replace("{column}", column)
        found = cursor.execute(sql, (series_id, min(plan.stored), max(plan.stored)))
        pieces += [(block, blob) for block, blob in found if block in plan.stored]
    pieces.sort(key=lambda piece: piece[0])
    return np.frombuffer(b"".join(blob for _, blob in pieces), dtype=SUMMARY_DTYPE)


def _part(summaries: np.ndarray, part: str) -> np.ndarray:
    out = np.empty(len(summaries), dtype=RECORD_DTYPE)
    out["step"] = summaries[f"{part}_step"]
    out["value"] = summaries[f"{part}_value"]
    out["wall_time"] = summaries[f"{part}_wall"]
    return out


def bucket_points(buckets: np.ndarray, max_points: int) -> np.ndarray:
    """The points buckets show, in step order: each bucket's low (when it has a finite
    value), its first NaN/±Infinity, and its high when it holds no NaN/±Infinity; with
    max_points 1, the one bucket's first NaN/±Infinity, else its low."""
    bad = buckets["has_bad"].astype(bool)
    if max_points == 1:
        return _part(buckets[:1], "bad" if bad[0] else "low")
    finite = buckets["has_finite"].astype(bool)
    picks = np.concatenate(
        [_part(buckets[finite], "low"), _part(buckets[bad], "bad"), _part(buckets[~bad], "high")]
    )
    picks = picks[np.argsort(picks["step"], kind="stable")]
    distinct = np.ones(len(picks), dtype=bool)
    distinct[1:] = picks["step"][1:] != picks["step"][:-1]  # a low that is also the high
    return picks[distinct]


def _level(plan: _Plan, buckets: int) -> int:
    level_1, level_2 = plan.cell_counts()
    return 2 if level_2 >= buckets else 1 if level_1 >= buckets else 0


def read_downsampled(
    cursor: DriverCursor, series_id: int, start: int, end: int, max_points: int
) -> tuple[np.ndarray, int]:
    """Steps start..end (inclusive) of one series downsampled to at most `max_points`
    points (all of them when they fit), and how many points the window holds."""
    plan = _plan(cursor, series_id, start, end)
    buckets = max(1, max_points // 2)
    if plan is None or plan.total <= max_points or _level(plan, buckets) == 0:
        records = read_series(cursor, series_id, start, end)
        if len(records) <= max_points:
            return records, len(records)
        return records[downsample_indices(records["value"], max_points)], len(records)
    window = _window_cells(cursor, series_id, plan, _level(plan, buckets))
    edges = np.linspace(0, len(window), buckets + 1).astype(np.int64)
    summaries = zoom_cells.combine(window, edges[:-1])
    return bucket_points(summaries, max_points), plan.total
