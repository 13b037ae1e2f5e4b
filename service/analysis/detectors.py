"""The five signatures a curve is read for, each a vectorised rule with named thresholds.

Rules (the README's "Diagnosis" section states them for users; keep the two in step):
- oscillation: the curve is cut into half-overlapping windows; in each, a cubic trend
  is removed (a remainder spreading less than OSCILLATION_MIN_SPREAD is rounding) and
  the autocorrelation of what is left is computed (FFT), of its step-to-step differences
  and of itself. A window rings when, after its autocorrelation first turns negative,
  the top of its next positive lobe reaches OSCILLATION_MIN_AUTOCORRELATION at a lag
  that fits OSCILLATION_MIN_CYCLES times in the window, with a trough of at most minus
  half that before it. At least OSCILLATION_MIN_WINDOWS ringing windows make a finding,
  from the first to the last; the period is the peak of their mean autocorrelation.
- plateau: the curve smoothed over PLATEAU_SMOOTHING of its length; from the first step
  after which it never improves by PLATEAU_MAX_IMPROVEMENT of its level again, if that
  stretch is at least PLATEAU_MIN_SPAN of the run.
- spike: a single point that stands above both its neighbours by at least SPIKE_MIN_Z
  robust spreads of the curve's step-to-step change (1.4826 × the median absolute change
  in its block of SPIKE_WINDOW points, or a neighbouring block's if larger); the
  SPIKES_REPORTED largest.
- divergence: a non-finite value, or the curve ending DIVERGENCE_FACTOR above its best so
  far for at least DIVERGENCE_MIN_POINTS points.
- overfitting: the validation curve ends OVERFITTING_MIN_RISE above its lowest point,
  while the training curve fell by OVERFITTING_MIN_TRAIN_GAIN over the same steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from service.analysis.curve import Curve

OSCILLATION_WINDOWS = 4  # window length: a quarter of the curve (7 half-overlapping),
OSCILLATION_MAX_WINDOW_POINTS = 2**16  # at most this (longer curves: more windows)
OSCILLATION_MIN_WINDOW_POINTS = 64
OSCILLATION_MIN_CYCLES = 3
OSCILLATION_MIN_AUTOCORRELATION = 0.3
OSCILLATION_MIN_WINDOWS = 3
OSCILLATION_MIN_PERIOD_POINTS = 2.5
# Less spread than this, once the trend is removed, is rounding: 0.01 % of the level on
# a log scale, else of the curve's range.
OSCILLATION_MIN_SPREAD = 1e-4
PLATEAU_SMOOTHING = 0.05
PLATEAU_MAX_IMPROVEMENT = 0.02
PLATEAU_MIN_SPAN = 0.25
PLATEAU_MIN_POINTS = 20
SPIKE_WINDOW = 21
SPIKE_MIN_Z = 8.0
SPIKES_REPORTED = 5
# The least spread a spike is measured against: 1 % of the level on a log scale, else
# a thousandth of the curve's range (a noise-free curve has no spread at all).
SPIKE_MIN_LOG_SPREAD = 0.01
SPIKE_MIN_RANGE_SPREAD = 0.001
MAD_TO_SIGMA = 1.4826
DIVERGENCE_FACTOR = 10.0
DIVERGENCE_MIN_POINTS = 5
OVERFITTING_MIN_POINTS = 5
OVERFITTING_MIN_RISE = 0.05
OVERFITTING_MIN_TRAIN_GAIN = 0.01


def moving_average(values: np.ndarray, width: int) -> np.ndarray:
    """Centred mean over `width` points, the ends padded with the end values."""
    before, after = width // 2, width - 1 - width // 2
    padded = np.concatenate([np.full(before, values[0]), values, np.full(after, values[-1])])
    sums = np.cumsum(np.concatenate([[0.0], padded]))
    return np.asarray((sums[width:] - sums[:-width]) / width)


@dataclass(frozen=True)
class Found:
    """A finding before it is worded: kind, steps and the numbers behind it."""

    kind: str
    from_step: int
    to_step: int
    detail: dict[str, Any] = field(default_factory=dict)


def _cubic_basis(length: int) -> np.ndarray:
    """Orthonormal columns spanning 1, t, t², t³ over `length` points: projecting on them
    fits the least-squares cubic without solving anything (~20x cheaper at 250,000
    points than a least-squares solve). A cubic, so that the differences of what is left
    are free of a quadratic trend too."""
    t = np.linspace(-1.0, 1.0, length)
    basis, _ = np.linalg.qr(np.stack([np.ones_like(t), t, t * t, t * t * t], axis=1))
    return np.asarray(basis)


def _detrended_windows(values: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Half-overlapping windows of `length` points, each minus its least-squares cubic,
    and each window's first index."""
    starts = np.arange(0, len(values) - length + 1, length // 2)
    windows = np.lib.stride_tricks.sliding_window_view(values, length)[starts]
    basis = _cubic_basis(length)
    # float32 after the trend is gone: half the FFT's time, and ample for a correlation.
    return (windows - (windows @ basis) @ basis.T).astype(np.float32), starts


def _autocovariances(windows: np.ndarray) -> np.ndarray:
    """Each row's autocovariance (unbiased) at lags 0 to a OSCILLATION_MIN_CYCLES-th of
    the window plus three, as far as a peak is looked for. Zero padding past those lags
    is enough: a circular correlation wraps only the longer lags."""
    length = windows.shape[1]
    lags = length // OSCILLATION_MIN_CYCLES + 3
    size = _fast_length(length + lags)
    spectrum = np.fft.rfft(windows, n=size, axis=1)
    raw = np.fft.irfft(spectrum.real**2 + spectrum.imag**2, n=size, axis=1)[:, :lags]
    return np.asarray(raw / (length - np.arange(lags)), dtype=np.float64)


def _normalised(covariances: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nan_to_num(covariances / covariances[:, :1])


def _autocorrelations(windows: np.ndarray, floor: float) -> tuple[np.ndarray, np.ndarray]:
    """The autocorrelations of each window's step-to-step differences and of its values.
    One FFT serves both: the differences' autocovariance at lag k is 2c(k) − c(k−1) −
    c(k+1) of the values' (c(−1) = c(1)). A window whose detrended values spread less
    than `floor` (rounding, not ringing) gets zeros."""
    c = _autocovariances(windows)
    c[np.sqrt(np.maximum(c[:, 0], 0.0)) < floor] = 0.0
    before = np.concatenate([c[:, 1:2], c[:, :-2]], axis=1)
    differences = 2 * c[:, :-1] - before - c[:, 1:]
    return _normalised(differences[:, :-1]), _normalised(c[:, :-2])


def _fast_length(at_least: int) -> int:
    """The smallest 2^a·3^b·5^c at or above `at_least`: an FFT length pocketfft is fast at."""
    best = 1 << max(0, (at_least - 1).bit_length())
    five = 1
    while five < best:
        three = five
        while three < best:
            power = 1 << max(0, (-(-at_least // three) - 1).bit_length())
            best = min(best, three * power)
            three *= 3
        five *= 5
    return best


def _first(mask: np.ndarray, start: int) -> int | None:
    found = np.flatnonzero(mask[start:])
    return start + int(found[0]) if len(found) else None


def _ringing_peak(acf: np.ndarray) -> float | None:
    """The lag (fractional) of the first peak of a ringing autocorrelation, or None: the
    highest point of its first positive lobe after it first turns negative (a trough
    deep enough), if that is high enough and fits OSCILLATION_MIN_CYCLES times in the
    window. A lobe, not a local maximum: noise puts small wiggles in the trough."""
    longest = len(acf) - 2
    negative = acf[: longest + 1] < 0
    down = _first(negative, 1)
    up = _first(~negative, down) if down is not None else None
    if up is None:
        return None
    end = _first(negative, up) or longest + 1
    peak = up + int(np.argmax(acf[up:end]))
    trough = float(np.min(acf[1:peak]))
    if acf[peak] < OSCILLATION_MIN_AUTOCORRELATION or trough > -OSCILLATION_MIN_AUTOCORRELATION / 2:
        return None
    left, centre, right = acf[peak - 1], acf[peak], acf[peak + 1]
    bend = left - 2 * centre + right
    offset = 0.5 * (left - right) / bend if bend < 0 else 0.0
    return peak + float(np.clip(offset, -0.5, 0.5))


def _ringing(acfs: np.ndarray) -> list[int]:
    return [i for i, acf in enumerate(acfs) if _ringing_peak(acf) is not None]


def oscillation(curve: Curve) -> Found | None:
    """Tried on the step-to-step differences first (they favour the shortest period,
    the fundamental, over slower components and the trend), then on the curve itself
    (which keeps a long period that noise would drown in the differences)."""
    grid = curve.grid
    length = min(len(grid) // OSCILLATION_WINDOWS, OSCILLATION_MAX_WINDOW_POINTS)
    if length < OSCILLATION_MIN_WINDOW_POINTS:
        return None
    windows, starts = _detrended_windows(grid.values, length)
    scale = 1.0 if curve.logarithmic else float(np.ptp(grid.values))
    for acfs in _autocorrelations(windows, OSCILLATION_MIN_SPREAD * scale):
        ringing = _ringing(acfs)
        if len(ringing) < min(OSCILLATION_MIN_WINDOWS, len(starts)):
            continue
        lag = _ringing_peak(acfs[ringing].mean(axis=0))
        if lag is None or lag < OSCILLATION_MIN_PERIOD_POINTS:
            continue
        strength = float(np.mean([acfs[i][round(lag)] for i in ringing]))
        return Found(
            "oscillation",
            grid.step(starts[ringing[0]]),
            grid.step(min(starts[ringing[-1]] + length - 1, len(grid) - 1)),
            {"period": round(lag * grid.spacing, 1), "autocorrelation": round(strength, 3)},
        )
    return None


def plateau(curve: Curve) -> Found | None:
    grid = curve.grid
    if len(grid) < PLATEAU_MIN_POINTS:
        return None
    width = max(3, int(len(grid) * PLATEAU_SMOOTHING))
    smooth = moving_average(grid.values, width)
    best_after = np.minimum.accumulate(smooth[::-1])[::-1]
    improvement = curve.relative(smooth - best_after, smooth)
    still_learning = np.flatnonzero(improvement >= PLATEAU_MAX_IMPROVEMENT)
    start = int(still_learning[-1]) + 1 if len(still_learning) else 0
    span = len(grid) - 1 - start
    if span < max(PLATEAU_MIN_POINTS, PLATEAU_MIN_SPAN * (len(grid) - 1)):
        return None
    relative = float(improvement[start])
    return Found(
        "plateau",
        grid.step(start),
        grid.step(len(grid) - 1),
        {"relative_improvement": round(relative, 5)},
    )


def _block_medians(values: np.ndarray, width: int) -> np.ndarray:
    """Each point's local median: the median of each block of `width` consecutive points
    (the last padded with its last value), the largest of its own block's and its two
    neighbours' (one block's median of a few points can be low by chance). A fraction of
    a sliding median's cost."""
    padded = np.concatenate([values, np.full(-len(values) % width, values[-1])])
    medians = np.median(padded.reshape(-1, width), axis=1)
    around = np.concatenate([medians[:1], medians, medians[-1:]])
    largest = np.maximum(np.maximum(around[:-2], around[1:-1]), around[2:])
    return np.repeat(largest, width)[: len(values)]


def _jumps(curve: Curve) -> np.ndarray:
    """How far each inner point stands above both its neighbours, in robust local
    spreads of the step-to-step change (a smooth bend, or an oscillation's crest, stands
    above its neighbours by far less than the curve moves in a step)."""
    change = np.diff(curve.scaled)
    jump = np.minimum(change[:-1], -change[1:])
    local = MAD_TO_SIGMA * _block_medians(np.abs(change), SPIKE_WINDOW)
    if curve.logarithmic:
        floor = SPIKE_MIN_LOG_SPREAD
    else:
        floor = SPIKE_MIN_RANGE_SPREAD * float(np.ptp(curve.scaled)) or np.finfo(float).tiny
    # Half the typical spread too: a stretch that happens to be quiet is no yardstick.
    spread = np.maximum(local[1:], max(floor, 0.5 * float(np.median(local))))
    return np.asarray(jump / spread)


def spikes(curve: Curve) -> list[Found]:
    if len(curve) < SPIKE_WINDOW:
        return []
    z = _jumps(curve)
    candidates = np.flatnonzero(z >= SPIKE_MIN_Z)
    largest = candidates[np.argsort(-z[candidates], kind="stable")[:SPIKES_REPORTED]]
    found = []
    for index in sorted(largest.tolist()):
        point = index + 1  # z starts at the second point
        step, value = int(curve.steps[point]), float(curve.values[point])
        detail = {"step": step, "value": value, "z": round(float(z[index]), 1)}
        found.append(Found("spike", step, step, detail))
    return found


def divergence(curve: Curve, last_step: int) -> Found | None:
    """`last_step`: the series' last step, non-finite points included."""
    if curve.first_non_finite is not None:
        step, value = curve.first_non_finite
        return Found("divergence", step, last_step, {"step": step, "value": str(value)})
    if not curve.logarithmic or len(curve) < DIVERGENCE_MIN_POINTS:
        return None
    smooth = moving_average(curve.scaled, DIVERGENCE_MIN_POINTS)
    above = smooth - np.minimum.accumulate(smooth) > np.log(DIVERGENCE_FACTOR)
    below = np.flatnonzero(~above)
    start = int(below[-1]) + 1 if len(below) else 0
    if len(curve) - start < DIVERGENCE_MIN_POINTS:
        return None
    step = int(curve.steps[start])
    return Found("divergence", step, last_step, {"step": step, "value": float(curve.values[start])})


def overfitting(train: Curve, validation: Curve) -> Found | None:
    """The validation curve turns up while the training curve keeps falling."""
    if len(validation) < OVERFITTING_MIN_POINTS or len(train) < 2:
        return None
    width = max(1, len(validation) // 25)
    smooth = moving_average(validation.scaled, width)
    best = int(np.argmin(smooth))
    if len(validation) - 1 - best < 2:
        return None
    climb = float(smooth[-1] - smooth[best])
    if validation.logarithmic:
        rise = float(np.expm1(climb))
    else:
        rise = climb / max(abs(float(smooth[best])), np.finfo(float).tiny)
    best_step, last_step = int(validation.steps[best]), int(validation.steps[-1])
    at = np.searchsorted(train.steps, [best_step, last_step], side="right") - 1
    train_then, train_now = train.scaled[max(at[0], 0)], train.scaled[max(at[1], 0)]
    train_gain = float(train.relative(train_then - train_now, train_then))
    if rise < OVERFITTING_MIN_RISE or train_gain < OVERFITTING_MIN_TRAIN_GAIN:
        return None
    detail = {
        "val_key": validation.key,
        "best_step": best_step,
        "relative_rise": round(rise, 4),
        "train_improvement": round(train_gain, 4),
    }
    return Found("overfitting", best_step, last_step, detail)
