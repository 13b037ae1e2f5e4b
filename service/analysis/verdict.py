"""The verdict's statistics: one number per run, groups with a t interval, Welch's test
against the best group, and the runs per group a test of that difference would need.

Pure numbers (scipy.special's distribution functions); the definitions are docs/verdict.md's:
- a run's number is its `summary` (as compare/summary defines it); for
  steps_to_threshold a run that never reached the threshold counts as its last step + 1,
  a lower bound, and `reached` counts those that did;
- a diverged run (its flag or a non-finite number) is left out of n, mean, std;
- std is the sample standard deviation (n - 1); the interval is
  mean ± t(1 - α/2, n - 1) · std / √n with α = 1 - confidence;
- the best is the best mean among groups without a diverged run (all groups if every
  one has one); each other group is compared with it by Welch's two-sided t-test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from momentum.contract.verdict import VerdictSummary as Summary
from service.analysis.groups import value_order
from service.analysis.summary import Mode, area, best_index, first_crossing, tail_mean

POWER = 0.8


@dataclass(frozen=True)
class RunNumber:
    """One run's number for the verdict; `value` is None when the run has no point."""

    run_id: int
    value: float | None
    diverged: bool
    reached: bool


def summary_value(steps: np.ndarray, values: np.ndarray, summary: Summary, mode: Mode) -> float:
    """One of compare/summary's numbers of a non-empty curve (service.analysis.summary's
    rules), computed alone: a verdict over a whole sweep needs only this one."""
    if summary == "final":
        return float(values[-1])
    if summary == "best":
        best = best_index(values, mode)
        return math.nan if best is None else float(values[best])
    if summary == "tail_mean":
        return tail_mean(steps, values)
    return area(steps, values)


def run_number(
    run_id: int,
    curve: tuple[np.ndarray, np.ndarray],
    flagged: bool,
    ask: tuple[Summary, Mode, float | None],
) -> RunNumber:
    """The run's `summary` of its (steps, values); never reaching the threshold counts as
    the last step + 1. Diverged: its flag, or a NaN/Inf in the curve or the number."""
    steps, values = curve
    summary, mode, threshold = ask
    if len(steps) == 0:
        return RunNumber(run_id, None, flagged, False)
    crossed = None if threshold is None else first_crossing(steps, values, threshold, mode)
    if summary == "steps_to_threshold":
        value = float(int(steps[-1]) + 1 if crossed is None else crossed)
    else:
        value = summary_value(steps, values, summary, mode)
    diverged = flagged or not math.isfinite(value) or not bool(np.isfinite(values).all())
    reached = crossed is not None if threshold is not None else True
    return RunNumber(run_id, value, diverged, reached)


@dataclass(frozen=True)
class GroupStats:
    value: Any
    run_ids: list[int]
    n: int
    mean: float | None
    std: float | None
    ci_low: float | None
    ci_high: float | None
    reached: int
    diverged: int
    missing: int


# scipy.special holds the distribution functions scipy.stats' t.ppf, norm.ppf and
# ttest_ind call; importing it costs a fraction of scipy.stats' import (~0.5 s idle, ~6 s
# on a loaded 2-core machine), which a server's first verdict would otherwise pay.
def t_quantile(probability: float, df: int) -> float:
    """Student's t quantile (scipy.stats.t.ppf)."""
    from scipy import special

    return float(special.stdtrit(df, probability))


def z_quantile(probability: float) -> float:
    """The standard normal quantile (scipy.stats.norm.ppf)."""
    from scipy import special

    return float(special.ndtri(probability))


def welch_test(
    mean_a: float, std_a: float, n_a: int, mean_b: float, std_b: float, n_b: int
) -> float:
    """Welch's two-sided p-value (scipy.stats.ttest_ind(..., equal_var=False)): the
    Welch-Satterthwaite degrees of freedom and the t distribution's tails."""
    from scipy import special

    # numpy floats: an overflow is inf (then a NaN p-value, answered null), never an error
    std_a, std_b = np.float64(std_a), np.float64(std_b)
    with np.errstate(all="ignore"):
        share_a, share_b = std_a * std_a / n_a, std_b * std_b / n_b
        pooled = share_a + share_b
        df = pooled * pooled / (share_a * share_a / (n_a - 1) + share_b * share_b / (n_b - 1))
        t = (np.float64(mean_a) - mean_b) / np.sqrt(pooled)
        return float(2 * special.stdtr(df, -abs(t)))


def finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def group_stats(value: Any, numbers: list[RunNumber], confidence: float) -> GroupStats:
    """n, mean, sample std and the t interval of the group's runs that did not diverge."""
    counted = [r for r in numbers if not r.diverged and r.value is not None]
    samples = np.array([r.value for r in counted], dtype=np.float64)
    n = len(samples)
    mean = std = ci_low = ci_high = None
    # Numbers near the float limit overflow a sum or a square: those answer null.
    with np.errstate(over="ignore", invalid="ignore"):
        if n:
            mean = finite(float(np.mean(samples)))
        if n >= 2 and mean is not None:
            std = finite(float(np.std(samples, ddof=1)))
        if std is not None and mean is not None:
            # A confidence within 1e-16 of 1 has no finite interval.
            half = t_quantile(1 - (1 - confidence) / 2, n - 1) * std / math.sqrt(n)
            ci_low, ci_high = finite(mean - half), finite(mean + half)
    return GroupStats(
        value=value,
        run_ids=[r.run_id for r in numbers],
        n=n,
        mean=mean,
        std=std,
        ci_low=ci_low,
        ci_high=ci_high,
        reached=sum(r.reached for r in counted),
        diverged=sum(r.diverged for r in numbers),
        missing=sum(not r.diverged and r.value is None for r in numbers),
    )


def better_of(summary: Summary, mode: Mode) -> Mode:
    """Fewer steps to the threshold is better whichever way the metric improves."""
    return "min" if summary == "steps_to_threshold" else mode


def pick_best(groups: list[GroupStats], better: Mode) -> GroupStats | None:
    """The best mean among groups without a diverged run (all groups if each has one)."""
    with_mean = [g for g in groups if g.mean is not None]
    pool = [g for g in with_mean if g.diverged == 0] or with_mean
    if not pool:
        return None
    sign = 1.0 if better == "min" else -1.0
    return min(pool, key=lambda g: (sign * (g.mean or 0.0), value_order(g.value)))


@dataclass(frozen=True)
class Comparison:
    value: Any
    versus: Any
    difference: float | None
    p_value: float | None
    significant: bool
    seeds_needed: int | None


def welch_p_value(group: GroupStats, best: GroupStats) -> float | None:
    """Welch's two-sided t-test; None when either n < 2 or both spreads are 0."""
    if group.std is None or best.std is None or group.mean is None or best.mean is None:
        return None
    if group.std == 0 and best.std == 0:
        return None
    p_value = welch_test(group.mean, group.std, group.n, best.mean, best.std, best.n)
    return p_value if math.isfinite(p_value) else None


def seeds_needed(
    std_a: float | None, std_b: float | None, delta: float | None, alpha: float
) -> int | None:
    """ceil(2 (z(1 - α/2) + z(0.8))² s² / δ²), s² = (s_a² + s_b²) / 2; None when δ = 0
    or a spread is unknown or zero (no finite count answers those)."""
    if std_a is None or std_b is None or delta is None or delta == 0:
        return None
    with np.errstate(all="ignore"):
        pooled = (np.float64(std_a) * std_a + np.float64(std_b) * std_b) / 2
        z_sum = z_quantile(1 - alpha / 2) + z_quantile(POWER)
        runs = 2 * z_sum * z_sum * pooled / (np.float64(delta) * delta)
    # No spread, α → 0 (z infinite) or δ² below the smallest float: no count answers.
    return math.ceil(runs) if pooled > 0 and math.isfinite(runs) else None


def compare_with_best(group: GroupStats, best: GroupStats, alpha: float) -> Comparison:
    difference = None
    if group.mean is not None and best.mean is not None:
        difference = finite(group.mean - best.mean)
    p_value = welch_p_value(group, best)
    significant = p_value is not None and p_value < alpha
    needed = None if significant else seeds_needed(group.std, best.std, difference, alpha)
    return Comparison(group.value, best.value, difference, p_value, significant, needed)
