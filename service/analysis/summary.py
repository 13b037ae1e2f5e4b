"""One run's curve reduced to the numbers a comparison ranks by.

Rules (the API documents the same):
- `best` / `best_step`: the lowest (mode "min") or highest ("max") finite value and the
  first step holding it; None when the curve has no finite value.
- `tail_mean`: the mean over the last 10 % of the logged step range, i.e. points with
  step >= last - 0.1 * (last - first); a NaN/Inf there makes it NaN/Inf (a run that
  ends diverged has no honest tail mean).
- `steps_to_threshold`: the first logged step whose finite value is <= threshold
  ("min") or >= threshold ("max"); None if never, or without a threshold.
- `auc`: the trapezoid rule over (step, value); non-finite values propagate.
- `speedup`: baseline's steps-to-threshold / this run's; None where either is missing
  or this run's is 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

Mode = Literal["min", "max"]
TAIL_FRACTION = 0.1


@dataclass(frozen=True)
class CurveSummary:
    points: int
    first_step: int | None
    last_step: int | None
    final: float | None
    best: float | None
    best_step: int | None
    tail_mean: float | None
    steps_to_threshold: int | None
    auc: float | None
    non_finite: bool  # the curve holds a NaN or ±Infinity


def best_index(values: np.ndarray, mode: Mode) -> int | None:
    finite = np.isfinite(values)
    if not finite.any():
        return None
    if mode == "min":
        return int(np.argmin(np.where(finite, values, np.inf)))
    return int(np.argmax(np.where(finite, values, -np.inf)))


def first_crossing(
    steps: np.ndarray, values: np.ndarray, threshold: float, mode: Mode
) -> int | None:
    """First step whose finite value reaches the threshold (<= for "min", >= for "max")."""
    with np.errstate(invalid="ignore"):
        reached = values <= threshold if mode == "min" else values >= threshold
    hits = np.flatnonzero(reached & np.isfinite(values))
    return int(steps[hits[0]]) if len(hits) else None


def tail_mean(steps: np.ndarray, values: np.ndarray) -> float:
    first, last = int(steps[0]), int(steps[-1])
    cutoff = last - TAIL_FRACTION * (last - first)
    with np.errstate(invalid="ignore"):
        return float(np.mean(values[steps >= cutoff]))


def area(steps: np.ndarray, values: np.ndarray) -> float:
    if len(steps) < 2:
        return 0.0
    with np.errstate(invalid="ignore"):
        return float(np.trapezoid(values, steps.astype(np.float64)))


def summarize(
    steps: np.ndarray, values: np.ndarray, mode: Mode, threshold: float | None = None
) -> CurveSummary:
    """The summary of one curve (steps ascending); an empty curve gives Nones."""
    if len(steps) == 0:
        return CurveSummary(0, None, None, None, None, None, None, None, None, False)
    best = best_index(values, mode)
    crossing = None if threshold is None else first_crossing(steps, values, threshold, mode)
    return CurveSummary(
        points=len(steps),
        first_step=int(steps[0]),
        last_step=int(steps[-1]),
        final=float(values[-1]),
        best=None if best is None else float(values[best]),
        best_step=None if best is None else int(steps[best]),
        tail_mean=tail_mean(steps, values),
        steps_to_threshold=crossing,
        auc=area(steps, values),
        non_finite=not bool(np.isfinite(values).all()),
    )


def speedup(baseline_steps: int | None, steps: int | None) -> float | None:
    if baseline_steps is None or steps is None or steps == 0:
        return None
    return baseline_steps / steps


def rank_key(summary: CurveSummary, diverged: bool, mode: Mode) -> tuple[float, ...]:
    """Sort key: runs that did not diverge, then those reaching the threshold (fewest
    steps first), then the better tail mean (a NaN/Inf tail last)."""
    reached = summary.steps_to_threshold
    tail = summary.tail_mean
    if tail is None or not math.isfinite(tail):
        tail_key = math.inf
    else:
        tail_key = tail if mode == "min" else -tail
    return (
        float(diverged),
        float(reached is None),
        float(reached if reached is not None else 0),
        tail_key,
    )
