"""Early-stopping rules, pure: a run's value at a rung, and the verdict with its reason.

- ASHA (Li et al.): at rung r, of the n runs that reached it (this one included), the
  best max(1, n // reduction_factor) go on. The cutoff is the worst value among them; a
  run continues if its value is at least as good. With fewer than reduction_factor runs
  only the best so far goes on, as Optuna's SuccessiveHalvingPruner does.
- median (Golovin et al.): a run whose best value so far is worse than the median of
  the other runs' values at the same step stops; with no other run it goes on.

A NaN value (a diverged curve) is worse than any number. Values are the objective's
summary of the points logged up to the rung, so one noisy batch does not decide.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from service.analysis.summary import Mode, summarize


@dataclass(frozen=True)
class Verdict:
    stop: bool
    cutoff: float | None
    reached: int  # the runs the decision compared, this one included
    reason: str | None


def rung_value(
    steps: np.ndarray, values: np.ndarray, rung: int, summary: str, mode: Mode
) -> float | None:
    """The summary (final, best or tail_mean) of the points with step <= rung."""
    upto = steps <= rung
    curve = summarize(steps[upto], values[upto], mode)
    picked = {"final": curve.final, "best": curve.best, "tail_mean": curve.tail_mean}[summary]
    if picked is None and curve.points:
        return math.nan  # every value is NaN: diverged
    return picked


def _badness(value: float, mode: Mode) -> float:
    """Lower is better, NaN worst."""
    if math.isnan(value):
        return math.inf
    return value if mode == "min" else -value


def shown(value: float | None) -> str:
    """A number in a reason: four significant digits, as `0.8412` or `1.23e-05`."""
    return "none" if value is None else f"{value:.4g}"


def asha(
    key: str, value: float, others: Sequence[float], rung: int, factor: int, mode: Mode
) -> Verdict:
    """Continue only in the top 1/factor of the runs that reached the rung."""
    competing = sorted([value, *others], key=lambda v: _badness(v, mode))
    reached = len(competing)
    cutoff = competing[max(1, reached // factor) - 1]
    if _badness(value, mode) <= _badness(cutoff, mode):
        return Verdict(False, cutoff, reached, None)
    reason = (
        f"stopped at step {rung}: {key} {shown(value)} is not in the top 1/{factor} at rung "
        f"{rung} (cutoff {shown(cutoff)}, {reached} runs reached it)"
    )
    return Verdict(True, cutoff, reached, reason)


def median(key: str, best_so_far: float, others: Sequence[float], step: int, mode: Mode) -> Verdict:
    """Stop when the best value so far is worse than the others' median at this step."""
    if not others:
        return Verdict(False, None, 1, None)
    finite = [_badness(v, mode) for v in others]
    middle = float(np.median(finite))
    cutoff = middle if mode == "min" else -middle
    reached = len(others) + 1
    if _badness(best_so_far, mode) <= middle:
        return Verdict(False, cutoff, reached, None)
    runs = "run" if len(others) == 1 else "runs"
    reason = (
        f"stopped at step {step}: {key} best so far {shown(best_so_far)} is worse than the "
        f"median {shown(cutoff)} of the {len(others)} other {runs} at step {step}"
    )
    return Verdict(True, cutoff, reached, reason)
