"""Runs grouped by a parameter (momentum across seeds): mean curve, spread, intervals.

The common step grid is the union of the members' logged steps (thinned evenly to at
most `max_points` grid steps). Each member is read on that grid by linear
interpolation in step between its two neighbouring logged points (its own value where
it logged that step); a member contributes only inside its own first..last step (no
extrapolation) and only where its value there is finite: next to a NaN/Inf the
interpolated value is not finite and is left out. `count` says how many members
stand behind each grid step, so a curve carried on by the survivors of a diverged
group is visible as such.

Spread: the sample standard deviation (n - 1); the 95 % confidence interval of the
mean is mean ± t(0.975, n - 1) · std / √n, both undefined (NaN) below two members.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from service.analysis.summary import CurveSummary, Mode

# Two-sided 95 %: t(0.975, df) for df = 1..30, then anchors interpolated in 1/df.
_T_975 = (
    12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
    2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
    2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423,
)  # fmt: skip
_T_975_TAIL = ((30, 2.0423), (40, 2.0211), (60, 2.0003), (120, 1.9799), (math.inf, 1.9600))


def t_critical(df: int) -> float:
    """Student's t quantile 0.975 with `df` degrees of freedom (4 significant digits)."""
    if df < 1:
        raise ValueError("a t interval needs at least one degree of freedom")
    if df <= len(_T_975):
        return _T_975[df - 1]
    for (low_df, low_t), (high_df, high_t) in zip(_T_975_TAIL, _T_975_TAIL[1:], strict=False):
        if df <= high_df:
            share = (1 / low_df - 1 / df) / (1 / low_df - 1 / high_df)
            return low_t + share * (high_t - low_t)
    return _T_975_TAIL[-1][1]


@dataclass(frozen=True)
class Member:
    run_id: int
    steps: np.ndarray
    values: np.ndarray
    diverged: bool
    summary: CurveSummary


@dataclass(frozen=True)
class Stat:
    mean: float | None
    std: float | None
    n: int

    @classmethod
    def of(cls, samples: list[float]) -> Stat:
        finite = [s for s in samples if math.isfinite(s)]
        if not finite:
            return cls(None, None, 0)
        array = np.array(finite)
        std = float(np.std(array, ddof=1)) if len(finite) > 1 else None
        return cls(float(np.mean(array)), std, len(finite))


@dataclass(frozen=True)
class GroupCurve:
    steps: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    count: np.ndarray


@dataclass(frozen=True)
class Group:
    value: Any
    members: list[Member]
    curve: GroupCurve
    final: Stat
    steps_to_threshold: Stat
    diverged: int
    run_ids: list[int] = field(default_factory=list)


def _sorted_union(arrays: list[np.ndarray]) -> np.ndarray:
    """Distinct values of ascending arrays, ascending (np.unique hashes: ~10x slower here)."""
    if all(len(a) == len(arrays[0]) and np.array_equal(a, arrays[0]) for a in arrays[1:]):
        return arrays[0]  # a sweep's runs usually share their grid
    merged = np.sort(np.concatenate(arrays), kind="stable")
    distinct = np.ones(len(merged), dtype=bool)
    distinct[1:] = merged[1:] != merged[:-1]
    return merged[distinct]


def common_grid(curves: list[np.ndarray], max_points: int) -> np.ndarray:
    """Union of the members' steps, thinned evenly (first and last kept) past max_points."""
    steps = [c for c in curves if len(c)]
    if not steps:
        return np.empty(0, dtype=np.int64)
    union = _sorted_union(steps)
    if len(union) <= max_points:
        return union
    keep = np.unique(np.linspace(0, len(union) - 1, max_points).round().astype(np.int64))
    return union[keep]


def on_grid(grid: np.ndarray, steps: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The member's values at the grid steps: exact where it logged the step, linear in
    between, NaN outside its step range."""
    if len(steps) == 0:
        return np.full(len(grid), np.nan)
    x, xp = grid.astype(np.float64), steps.astype(np.float64)
    with np.errstate(invalid="ignore"):
        out = np.interp(x, xp, values, left=np.nan, right=np.nan)
    # np.interp answers NaN even at a logged step when a neighbour is NaN.
    at = np.minimum(np.searchsorted(steps, grid), len(steps) - 1)
    exact = steps[at] == grid
    out[exact] = values[at[exact]]
    return out


def mean_curve(grid: np.ndarray, members: list[Member]) -> GroupCurve:
    matrix = np.vstack([on_grid(grid, m.steps, m.values) for m in members])
    valid = np.isfinite(matrix)
    count = valid.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(valid, matrix, 0.0).sum(axis=0) / count
        deviation = np.where(valid, matrix - mean, 0.0)
        std = np.sqrt((deviation**2).sum(axis=0) / (count - 1))
    std[count < 2] = np.nan
    t = np.array([t_critical(int(c) - 1) if c >= 2 else np.nan for c in np.unique(count)])
    t_by_count = dict(zip(np.unique(count).tolist(), t.tolist(), strict=True))
    half = np.array([t_by_count[c] for c in count.tolist()]) * std / np.sqrt(np.maximum(count, 1))
    return GroupCurve(grid, mean, std, mean - half, mean + half, count)


def build_group(value: Any, members: list[Member], max_points: int) -> Group:
    grid = common_grid([m.steps for m in members], max_points)
    crossings = [m.summary.steps_to_threshold for m in members]
    return Group(
        value=value,
        members=members,
        curve=mean_curve(grid, members),
        final=Stat.of([m.summary.final for m in members if m.summary.final is not None]),
        steps_to_threshold=Stat.of([float(c) for c in crossings if c is not None]),
        diverged=sum(m.diverged for m in members),
        run_ids=[m.run_id for m in members],
    )


def value_order(value: object) -> tuple[int, float | int, str]:
    """Numbers ascending, then text, then anything else; a missing parameter last."""
    if value is None:
        return (3, 0.0, "")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, value, "")  # Python orders an int and a float exactly, no float() needed
    if isinstance(value, str):
        return (1, 0.0, value)
    return (2, 0.0, repr(value))


def best_group(
    groups: list[Group], mode: Mode, threshold: float | None, key: str
) -> tuple[Group, str] | None:
    """The best setting and the criterion that picked it, stated in words.

    Groups with no diverged run are preferred (all groups if every one has one). With a
    threshold, among the groups whose every run reached it: the fewest mean steps to it.
    Otherwise (or if no group qualifies) the best mean final value.
    """
    safe = [g for g in groups if g.diverged == 0]
    pool = safe or groups
    caveat = "no run diverged" if safe else "every group had a diverged run"
    better = "lowest" if mode == "min" else "highest"
    compare = "<=" if mode == "min" else ">="
    if threshold is not None:
        reached = [
            g
            for g in pool
            if g.steps_to_threshold.mean is not None and g.steps_to_threshold.n == len(g.members)
        ]
        if reached:
            best = min(reached, key=lambda g: (g.steps_to_threshold.mean, value_order(g.value)))
            return best, (
                f"fewest mean steps to {key} {compare} {threshold:g} "
                f"(every run of the group reached it; {caveat})"
            )
    finals = [g for g in pool if g.final.mean is not None]
    if not finals:
        return None
    sign = 1.0 if mode == "min" else -1.0
    best = min(finals, key=lambda g: (sign * (g.final.mean or 0.0), value_order(g.value)))
    return best, f"{better} mean final {key} ({caveat})"
