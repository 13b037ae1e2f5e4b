"""Columnar series and extreme-preserving downsampling.

A history read answers at most `max_points` points. The series is cut into
`max_points // 2` buckets of consecutive points; each bucket keeps its lowest and
highest finite value (in step order), so spikes and the best value survive any zoom.
A bucket holding NaN or ±Infinity shows its first such point in place of its
highest value: divergence is never averaged or sampled away.

This is zoom level 0. Long series are read from zoom summaries instead, their buckets
runs of whole cells of 64 points or whole blocks (service/storage/zoom.py), by the same
rules; this cut applies when the points are few enough to read.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from momentum.contract.values import EncodedValue, encode_value
from service.errors import invalid_field


@dataclass(frozen=True)
class Columns:
    steps: np.ndarray  # int64
    values: np.ndarray  # float64; NaN where storage holds NULL
    wall_times: np.ndarray  # float64

    @classmethod
    def from_records(cls, records: np.ndarray) -> Columns:
        """From a structured array with fields step, value, wall_time."""
        return cls(records["step"], records["value"], records["wall_time"])

    def __len__(self) -> int:
        return len(self.steps)

    def take(self, index: np.ndarray) -> Columns:
        return Columns(self.steps[index], self.values[index], self.wall_times[index])


def points_budget(asked: int | None, default: int, cap: int) -> int:
    """The max_points a read uses: what it asked for, or `default`; never over `cap`
    (MOMENTUM_MAX_POINTS_PER_READ): asking for more is the caller's mistake, a 422."""
    if asked is None:
        return min(default, cap)
    if asked > cap:
        message = (
            f"max_points {asked} is over MOMENTUM_MAX_POINTS_PER_READ ({cap}); ask for "
            "fewer, read a step range (start_step, end_step) or use export.csv"
        )
        raise invalid_field("query", "max_points", message, kind="less_than_equal")
    return asked


def _first_per_bucket(mask: np.ndarray, bucket: np.ndarray) -> np.ndarray:
    """The first index where `mask` holds, in each bucket that has one."""
    where = np.flatnonzero(mask)
    if len(where) == 0:
        return where
    owners = bucket[where]
    starts = np.ones(len(where), dtype=bool)
    starts[1:] = owners[1:] != owners[:-1]
    return where[starts]


def downsample_indices(values: np.ndarray, max_points: int) -> np.ndarray:
    """Indices (ascending) of the points `downsample` keeps; array-at-a-time, no loop
    over buckets, so other columns (a smoothed curve) can be cut at the same points."""
    count = len(values)
    if count <= max_points:
        return np.arange(count)
    finite = np.isfinite(values)
    if max_points == 1:
        bad = np.flatnonzero(~finite)
        finite_low = np.where(finite, values, np.inf)
        return np.array([int(bad[0]) if len(bad) else int(np.argmin(finite_low))])
    edges = np.linspace(0, count, max_points // 2 + 1).astype(np.int64)
    # count > max_points >= 2 * buckets: every bucket holds at least two points.
    starts = edges[:-1]
    bucket = np.repeat(np.arange(len(starts)), np.diff(edges))
    low = np.where(finite, values, np.inf)
    high = np.where(finite, values, -np.inf)
    has_finite = np.logical_or.reduceat(finite, starts)
    all_finite = np.logical_and.reduceat(finite, starts)
    # argmin/argmax per bucket: the first point equal to its bucket's extreme.
    lows = _first_per_bucket(low == np.minimum.reduceat(low, starts)[bucket], bucket)
    highs = _first_per_bucket(high == np.maximum.reduceat(high, starts)[bucket], bucket)
    picks = [
        lows[has_finite[bucket[lows]]],
        _first_per_bucket(~finite, bucket),  # the first non-finite point stands for the high
        highs[all_finite[bucket[highs]]],
    ]
    return np.unique(np.concatenate(picks))


def downsample(columns: Columns, max_points: int) -> Columns:
    """At most `max_points` points, each bucket's extremes and non-finite values kept."""
    if len(columns) <= max_points:
        return columns
    return columns.take(downsample_indices(columns.values, max_points))


def wire_values(values: np.ndarray) -> np.ndarray | list[EncodedValue]:
    """Values for a FastJSONResponse: the array itself when all are finite (orjson writes
    it exactly as it writes the list, in half the time), else `encoded_values`."""
    if np.isfinite(values).all():
        return np.ascontiguousarray(values)
    return encoded_values(values)


def encoded_values(values: np.ndarray) -> list[EncodedValue]:
    """Floats for JSON, with NaN/±Infinity as the contract's strings."""
    out: list[EncodedValue] = values.tolist()
    for index in np.flatnonzero(~np.isfinite(values)).tolist():
        out[index] = encode_value(float(values[index]))
    return out
