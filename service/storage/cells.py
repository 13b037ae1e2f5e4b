"""Zoom summaries: what a downsampled read needs of a run of consecutive points.

A summary of some consecutive points holds three of them, whole (step, value,
wall_time): the first lowest finite value (`low`), the first highest finite value
(`high`) and the first NaN/±Infinity (`bad`), with flags saying which exist. Summaries
combine: the summary of consecutive summaries is the same record the points behind them
give (first-occurrence ties included), so a bucket of a downsampled read is answered
from the summaries of the cells it covers, never from their points.

Zoom levels (service/storage/zoom.py reads them):
- level 0: the points themselves;
- level 1: cells, a block's points cut by position into runs of CELL_POINTS (the last
  one shorter), kept as the `cells` blob of the block's row;
- level 2: the whole block, its `summary` blob.
Both blobs are written with the block's data, in the same statement (blocks.py), so a
block row's summaries always describe its points.
"""

from __future__ import annotations

import numpy as np

CELL_POINTS = 64
SUMMARY_DTYPE = np.dtype(
    [
        ("low_step", "<i8"),
        ("low_value", "<f8"),
        ("low_wall", "<f8"),
        ("high_step", "<i8"),
        ("high_value", "<f8"),
        ("high_wall", "<f8"),
        ("bad_step", "<i8"),
        ("bad_value", "<f8"),
        ("bad_wall", "<f8"),
        ("has_finite", "u1"),
        ("has_bad", "u1"),
    ]
)
_PARTS = ("low", "high", "bad")


def of_points(records: np.ndarray) -> np.ndarray:
    """One summary per point: a finite point is its own low and high, any other its bad."""
    out = np.zeros(len(records), dtype=SUMMARY_DTYPE)
    finite = np.isfinite(records["value"])
    for part in _PARTS:
        out[f"{part}_step"] = records["step"]
        out[f"{part}_value"] = records["value"]
        out[f"{part}_wall"] = records["wall_time"]
    out["has_finite"] = finite
    out["has_bad"] = ~finite
    return out


def _first_per_group(mask: np.ndarray, group: np.ndarray, groups: int) -> np.ndarray:
    """Per group, the first index where `mask` holds (-1 where none does)."""
    where = np.flatnonzero(mask)
    first = np.full(groups, -1, dtype=np.int64)
    # Reversed assignment: the last write to each slot is its group's first index.
    first[group[where][::-1]] = where[::-1]
    return first


def combine(summaries: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The summary of each group of consecutive summaries, groups starting at `starts`
    (ascending, the first 0, none empty)."""
    groups = len(starts)
    group = np.repeat(np.arange(groups), np.diff(np.append(starts, len(summaries))))
    finite = summaries["has_finite"].astype(bool)
    out = np.zeros(groups, dtype=SUMMARY_DTYPE)
    low = np.where(finite, summaries["low_value"], np.inf)
    high = np.where(finite, summaries["high_value"], -np.inf)
    chosen = {
        "low": _first_per_group(low == np.minimum.reduceat(low, starts)[group], group, groups),
        "high": _first_per_group(high == np.maximum.reduceat(high, starts)[group], group, groups),
        "bad": _first_per_group(summaries["has_bad"].astype(bool), group, groups),
    }
    for part, index in chosen.items():
        found = index >= 0
        for field in ("step", "value", "wall"):
            name = f"{part}_{field}"
            out[name][found] = summaries[name][index[found]]
    out["has_finite"] = np.logical_or.reduceat(finite, starts)
    out["has_bad"] = chosen["bad"] >= 0
    return out


def block_summaries(records: np.ndarray) -> tuple[bytes, bytes]:
    """The `cells` and `summary` blobs of a block's points (sorted, at least one)."""
    cells = combine(of_points(records), np.arange(0, len(records), CELL_POINTS))
    return cells.tobytes(), combine(cells, np.zeros(1, dtype=np.int64)).tobytes()
