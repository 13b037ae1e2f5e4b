"""Columnar series and extreme-preserving downsampling.

A history read answers at most `max_points` points. The series is cut into
`max_points // 2` buckets of consecutive points; each bucket keeps its lowest and
highest finite value (in step order), so spikes and the best value survive any zoom.
A bucket holding NaN or ±Infinity shows its first such point in place of its
highest value: divergence is never averaged or sampled away.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from momentum.contract.values import EncodedValue, encode_value


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


def _bucket_picks(values: np.ndarray, start: int, stop: int) -> list[int]:
    chunk = values[start:stop]
    finite = np.isfinite(chunk)
    picks: list[int] = []
    if finite.any():
        masked_low = np.where(finite, chunk, np.inf)
        picks.append(start + int(np.argmin(masked_low)))
    if not finite.all():
        picks.append(start + int(np.argmin(finite)))  # first non-finite point
    elif finite.any():
        picks.append(start + int(np.argmax(np.where(finite, chunk, -np.inf))))
    return sorted(set(picks))


def downsample(columns: Columns, max_points: int) -> Columns:
    """At most `max_points` points, each bucket's extremes and non-finite values kept."""
    count = len(columns)
    if count <= max_points:
        return columns
    if max_points == 1:
        bad = np.flatnonzero(~np.isfinite(columns.values))
        finite_low = np.where(np.isfinite(columns.values), columns.values, np.inf)
        keep = int(bad[0]) if len(bad) else int(np.argmin(finite_low))
        return columns.take(np.array([keep]))
    edges = np.linspace(0, count, max_points // 2 + 1).astype(np.int64)
    picks: list[int] = []
    for start, stop in zip(edges[:-1], edges[1:], strict=True):
        if stop > start:
            picks.extend(_bucket_picks(columns.values, int(start), int(stop)))
    return columns.take(np.array(picks, dtype=np.int64))


def encoded_values(values: np.ndarray) -> list[EncodedValue]:
    """Floats for JSON, with NaN/±Infinity as the contract's strings."""
    out: list[EncodedValue] = values.tolist()
    for index in np.flatnonzero(~np.isfinite(values)).tolist():
        out[index] = encode_value(float(values[index]))
    return out
