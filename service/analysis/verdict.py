"""The verdict's statistics: one number per run, groups with a t interval, Welch's test
against the best group, and the runs per group a test of that difference would need.

Pure numbers (scipy for the quantiles and the test); the definitions are docs/verdict.md's:
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
from typing import Any, Literal

import numpy as np

from service.analysis.groups import value_order
from service.analysis.summary import CurveSummary, Mode

Summary = Literal["final", "best", "tail_mean", "auc", "steps_to_threshold"]
POWER = 0.8


@dataclass(frozen=True)
class RunNumber:
    """One run's number for the verdict; `value` is None when the run has no point."""

    run_id: int
    value: float | None
    diverged: bool
    reached: bool


def run_number(
    run_id: int, curve: CurveSummary, flagged: bool, summary: Summary, threshold: float | None
) -> RunNumber:
    """The run's `summary`; never reaching the threshold counts as last step + 1."""
    crossed = curve.steps_to_threshold
    value: float | None
    if summary == "steps_to_threshold":
        if crossed is not None:
            value = float(crossed)
        else:
            value = None if curve.last_step is None else float(curve.last_step + 1)
    else:
        number = getattr(curve, summary)
        value = None if number is None else float(number)
    diverged = flagged or curve.non_finite or (value is not None and not math.isfinite(value))
    reached = crossed is not None if threshold is not None else value is not None
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


def t_quantile(probability: float, df: int) -> float:
    from scipy import stats  # ~0.3 s to import: only when a verdict is asked for

    return float(stats.t.ppf(probability, df))


def z_quantile(probability: float) -> float:
    from scipy import stats

    return float(stats.norm.ppf(probability))


def group_stats(value: Any, numbers: list[RunNumber], confidence: float) -> GroupStats:
    """n, mean, sample std and the t interval of the group's runs that did not diverge."""
    counted = [r for r in numbers if not r.diverged and r.value is not None]
    samples = np.array([r.value for r in counted], dtype=np.float64)
    n = len(samples)
    mean = float(np.mean(samples)) if n else None
    std = ci_low = ci_high = None
    if n >= 2 and mean is not None:
        std = float(np.std(samples, ddof=1))
        half = t_quantile(1 - (1 - confidence) / 2, n - 1) * std / math.sqrt(n)
        ci_low, ci_high = mean - half, mean + half
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
    from scipy import stats

    _, p_value = stats.ttest_ind_from_stats(
        group.mean, group.std, group.n, best.mean, best.std, best.n, equal_var=False
    )
    return float(p_value) if math.isfinite(p_value) else None


def seeds_needed(
    std_a: float | None, std_b: float | None, delta: float | None, alpha: float
) -> int | None:
    """ceil(2 (z(1 - α/2) + z(0.8))² s² / δ²), s² = (s_a² + s_b²) / 2; None when δ = 0
    or a spread is unknown or zero (no finite count answers those)."""
    if std_a is None or std_b is None or delta is None or delta == 0:
        return None
    pooled = (std_a**2 + std_b**2) / 2
    if pooled == 0:
        return None
    z_sum = z_quantile(1 - alpha / 2) + z_quantile(POWER)
    return math.ceil(2 * z_sum**2 * pooled / delta**2)


def compare_with_best(group: GroupStats, best: GroupStats, alpha: float) -> Comparison:
    difference = None
    if group.mean is not None and best.mean is not None:
        difference = group.mean - best.mean
    p_value = welch_p_value(group, best)
    significant = p_value is not None and p_value < alpha
    needed = None if significant else seeds_needed(group.std, best.std, difference, alpha)
    return Comparison(group.value, best.value, difference, p_value, significant, needed)
