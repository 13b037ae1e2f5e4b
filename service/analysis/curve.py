"""A metric curve prepared for diagnosis: finite part, orientation, scale, even step grid.

Every detector in service/analysis/detectors.py reads the curve "lower is better" (an
accuracy is negated) and, for a curve that is positive throughout (a loss), on a log
scale: a loss that shrinks by 10 % every few hundred steps is then a straight line, and
the size of a wiggle is judged against the curve's own level, not against its range.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from momentum.contract.metrics import better_direction

# Resampling onto an even grid may add at most this many points per stored point (a
# curve logged with large gaps is read on a coarser grid instead).
MAX_GRID_GROWTH = 2


@dataclass(frozen=True)
class Curve:
    """The finite prefix of a stored series (a diverged run's analysis stops at its first
    non-finite value; that value itself is the divergence finding)."""

    key: str
    steps: np.ndarray  # int64, increasing
    values: np.ndarray  # float64 as stored, finite
    # Lower is better, log scale where `logarithmic`.
    scaled: np.ndarray
    logarithmic: bool
    # The first non-finite point: (step, value), or None.
    first_non_finite: tuple[int, float] | None

    @classmethod
    def of(cls, key: str, steps: np.ndarray, values: np.ndarray) -> Curve:
        steps = np.asarray(steps, dtype=np.int64)
        values = np.asarray(values, dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(values))
        first_bad = None
        if len(bad):
            first_bad = (int(steps[bad[0]]), float(values[bad[0]]))
            steps, values = steps[: bad[0]], values[: bad[0]]
        oriented = -values if better_direction(key) == "max" else values
        logarithmic = bool(len(oriented)) and bool(np.all(oriented > 0))
        scaled = np.log(oriented) if logarithmic else oriented
        return cls(key, steps, values, scaled, logarithmic, first_bad)

    def __len__(self) -> int:
        return len(self.steps)

    @cached_property
    def grid(self) -> Grid:
        """The curve on an even step grid (made once: several rules read it)."""
        return Grid.of(self)

    def relative(self, scaled_drop: np.ndarray | float, level: np.ndarray | float) -> np.ndarray:
        """A drop of the scaled curve as a fraction of the curve's level there."""
        if self.logarithmic:
            return np.asarray(-np.expm1(-np.asarray(scaled_drop)))
        return np.asarray(scaled_drop) / np.maximum(np.abs(level), np.finfo(float).tiny)

    def to_value(self, scaled: float) -> float:
        """A scaled number back in the curve's own units."""
        return float(np.exp(scaled)) if self.logarithmic else float(scaled)


@dataclass(frozen=True)
class Grid:
    """The scaled curve on evenly spaced steps (linear interpolation where steps were
    skipped), as spectral and smoothing analysis need."""

    start: int
    spacing: int
    values: np.ndarray

    @classmethod
    def of(cls, curve: Curve) -> Grid:
        steps = curve.steps
        if len(steps) < 2:
            return cls(int(steps[0]) if len(steps) else 0, 1, curve.scaled.copy())
        gaps = np.diff(steps)
        spacing = max(1, int(np.median(gaps)))
        span = int(steps[-1] - steps[0])
        spacing = max(spacing, -(-span // (MAX_GRID_GROWTH * len(steps))))
        if np.all(gaps == spacing):
            return cls(int(steps[0]), spacing, curve.scaled.copy())
        grid = np.arange(int(steps[0]), int(steps[-1]) + 1, spacing, dtype=np.int64)
        return cls(int(steps[0]), spacing, np.interp(grid, steps, curve.scaled))

    def __len__(self) -> int:
        return len(self.values)

    def step(self, index: int | np.integer) -> int:
        return self.start + int(index) * self.spacing
