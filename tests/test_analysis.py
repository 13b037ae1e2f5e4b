"""The comparison math on curves whose answers are known by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from service.analysis.groups import (
    Member,
    best_group,
    build_group,
    common_grid,
    on_grid,
    t_critical,
)
from service.analysis.smoothing import debiased_ema
from service.analysis.summary import Mode, speedup, summarize
from service.downsample import Columns, downsample, downsample_indices

NAN, INF = math.nan, math.inf


def tensorboard_ema(values: list[float], weight: float) -> list[float]:
    """TensorBoard's scalar-dashboard loop, transcribed: the reference."""
    last, accumulated, out = 0.0, 0, []
    for value in values:
        if not math.isfinite(value):
            out.append(value)
            continue
        last = last * weight + (1 - weight) * value
        accumulated += 1
        out.append(last / (1 - weight**accumulated))
    return out


def test_ema_by_hand_with_a_nan_passing_through() -> None:
    # w = 0.5: last 0.5 -> /0.5 = 1; 1.25 -> /0.75 = 5/3; NaN stays; 2.625 -> /0.875 = 3.
    smoothed = debiased_ema(np.array([1.0, 2.0, NAN, 4.0]), 0.5)
    np.testing.assert_allclose(smoothed[[0, 1, 3]], [1.0, 5 / 3, 3.0], rtol=1e-15)
    assert math.isnan(smoothed[2])


def test_ema_infinities_pass_through_and_do_not_poison_what_follows() -> None:
    smoothed = debiased_ema(np.array([2.0, INF, -INF, 2.0, 8.0]), 0.5)
    assert smoothed[1] == INF and smoothed[2] == -INF
    # The second finite point is the second accumulated one: (0.5 + 1) / 0.75 = 2.
    np.testing.assert_allclose(smoothed[[0, 3, 4]], [2.0, 2.0, (0.75 + 4.0) / 0.875])


def test_ema_weight_zero_is_the_identity_and_a_weight_of_one_is_refused() -> None:
    values = np.array([3.0, NAN, 1.0])
    np.testing.assert_array_equal(debiased_ema(values, 0.0), values)
    with pytest.raises(ValueError):
        debiased_ema(values, 1.0)


@pytest.mark.parametrize("weight", [1e-9, 0.3, 0.6, 0.9, 0.99, 0.999, 0.9999])
@pytest.mark.parametrize("count", [1, 2, 127, 128, 129, 3001])
def test_vectorized_ema_matches_the_loop(weight: float, count: int) -> None:
    rng = np.random.default_rng(count)
    values = rng.normal(size=count) * 10 + 5
    values[rng.random(count) < 0.05] = NAN
    values[rng.random(count) < 0.01] = INF
    expected = tensorboard_ema(values.tolist(), weight)
    np.testing.assert_allclose(debiased_ema(values, weight), expected, rtol=1e-11, atol=1e-12)


def _reference_downsample(values: np.ndarray, max_points: int) -> list[int]:
    """The bucket loop `downsample` used before it went array-at-a-time."""
    count = len(values)
    if count <= max_points:
        return list(range(count))
    if max_points == 1:
        bad = np.flatnonzero(~np.isfinite(values))
        return [int(bad[0]) if len(bad) else int(np.nanargmin(values))]
    edges = np.linspace(0, count, max_points // 2 + 1).astype(np.int64)
    picks: list[int] = []
    for start, stop in zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True):
        chunk = values[start:stop]
        finite = np.isfinite(chunk)
        bucket = []
        if finite.any():
            bucket.append(start + int(np.argmin(np.where(finite, chunk, np.inf))))
        if not finite.all():
            bucket.append(start + int(np.argmin(finite)))
        elif finite.any():
            bucket.append(start + int(np.argmax(np.where(finite, chunk, -np.inf))))
        picks.extend(sorted(set(bucket)))
    return picks


def test_vectorized_downsample_picks_what_the_bucket_loop_picked() -> None:
    rng = np.random.default_rng(7)
    for _ in range(500):
        count, max_points = int(rng.integers(1, 300)), int(rng.integers(1, 40))
        values = np.round(rng.normal(size=count), 1)  # ties: the first extreme wins
        values[rng.random(count) < rng.random() * 0.3] = NAN
        values[rng.random(count) < 0.05] = INF
        values[rng.random(count) < 0.05] = -INF
        expected = _reference_downsample(values, max_points)
        assert downsample_indices(values, max_points).tolist() == expected


def test_bucket_extremes_and_a_nan_survive_downsampling() -> None:
    values = np.linspace(1.0, 0.0, 1000)
    values[123], values[456], values[789] = 50.0, -3.0, NAN
    columns = Columns(np.arange(1000), values, np.zeros(1000))
    kept = downsample(columns, 20)
    assert len(kept) <= 20
    assert {123, 456, 789} <= set(kept.steps.tolist())


def _curve(steps: list[int], values: list[float]) -> tuple[np.ndarray, np.ndarray]:
    return np.array(steps, dtype=np.int64), np.array(values, dtype=np.float64)


def test_summary_of_a_known_curve() -> None:
    steps, values = _curve(list(range(0, 100, 10)), [9, 8, 7, 6, 5, 4, 3, 2, 1, 1.5])
    s = summarize(steps, values, "min", threshold=4.5)
    assert (s.final, s.best, s.best_step, s.steps_to_threshold) == (1.5, 1.0, 80, 50)
    # Last 10 % of 0..90: steps >= 81, i.e. step 90 alone.
    assert s.tail_mean == 1.5
    # Trapezoids of width 10: 10 * (sum - (first + last) / 2).
    assert s.auc == pytest.approx(10 * (46.5 - (9 + 1.5) / 2))  # 412.5
    assert s.non_finite is False
    assert summarize(steps, values, "min").steps_to_threshold is None
    assert summarize(steps, values, "max", threshold=8.5).steps_to_threshold == 0


def test_thresholds_crossed_at_known_steps_on_different_grids() -> None:
    # The same line 1 - step / 1000, logged every step and every 7th step.
    dense = _curve(list(range(1000)), [1 - s / 1000 for s in range(1000)])
    sparse = _curve(list(range(0, 1000, 7)), [1 - s / 1000 for s in range(0, 1000, 7)])
    assert summarize(*dense, "min", threshold=0.25).steps_to_threshold == 750
    assert summarize(*sparse, "min", threshold=0.25).steps_to_threshold == 756  # 7 * 108
    assert speedup(756, 750) == pytest.approx(1.008)
    assert speedup(None, 750) is None and speedup(756, None) is None and speedup(5, 0) is None


def test_nan_in_the_middle_is_not_best_nor_a_crossing_and_poisons_tail_only_if_there() -> None:
    steps, values = _curve([0, 1, 2, 3, 4], [3.0, NAN, -INF, 1.0, 2.0])
    s = summarize(steps, values, "min", threshold=0.5)
    assert (s.best, s.best_step, s.steps_to_threshold) == (1.0, 3, None)
    assert s.non_finite is True and s.tail_mean == 2.0
    assert math.isnan(s.auc or 0.0)
    tail = summarize(*_curve([0, 10], [1.0, NAN]), "min")
    assert tail.tail_mean is not None and math.isnan(tail.tail_mean)
    assert (tail.best, tail.final is not None and math.isnan(tail.final)) == (1.0, True)


def test_empty_and_single_point_curves() -> None:
    empty = summarize(*_curve([], []), "min", 1.0)
    assert (empty.points, empty.final, empty.best, empty.auc) == (0, None, None, None)
    one = summarize(*_curve([5], [0.5]), "min", 1.0)
    assert (one.steps_to_threshold, one.auc, one.tail_mean) == (5, 0.0, 0.5)


def test_t_critical_values() -> None:
    assert t_critical(1) == 12.7062 and t_critical(2) == 4.3027 and t_critical(30) == 2.0423
    assert t_critical(10**9) == pytest.approx(1.96, abs=1e-4)
    assert 2.0211 > t_critical(50) > 2.0003
    scipy_stats = pytest.importorskip("scipy.stats")
    for df in (1, 2, 3, 7, 29, 31, 45, 90, 200, 5000):
        assert t_critical(df) == pytest.approx(scipy_stats.t.ppf(0.975, df), abs=2e-4)


def _member(run_id: int, steps: list[int], values: list[float], mode: Mode = "min") -> Member:
    s, v = _curve(steps, values)
    summary = summarize(s, v, mode, threshold=2.0)
    return Member(run_id, s, v, summary.non_finite, summary)


def test_on_grid_interpolates_linearly_and_never_extrapolates() -> None:
    steps, values = _curve([0, 10, 20], [0.0, 10.0, NAN])
    at = on_grid(np.array([0, 5, 10, 15, 20, 30]), steps, values)
    assert at[:3].tolist() == [0.0, 5.0, 10.0]  # exact at 10 though its right neighbour is NaN
    assert all(math.isnan(v) for v in at[3:])


def test_group_mean_std_and_ci_on_a_common_grid_with_a_diverged_member() -> None:
    a = _member(1, [0, 10, 20], [4.0, 2.0, 1.0])
    b = _member(2, [0, 5, 10, 15, 20], [6.0, 5.0, 4.0, 3.0, 2.0])
    diverged = _member(3, [0, 10], [5.0, NAN])
    group = build_group(0.9, [a, b, diverged], max_points=1000)
    curve = group.curve
    assert curve.steps.tolist() == [0, 5, 10, 15, 20]
    assert curve.count.tolist() == [3, 2, 2, 2, 2]
    # Step 5: a interpolated to 3.0, b logged 5.0; the diverged run is NaN there (next to NaN).
    np.testing.assert_allclose(curve.mean, [5.0, 4.0, 3.0, 2.25, 1.5])
    np.testing.assert_allclose(curve.std[0], 1.0)  # 4, 6, 5
    np.testing.assert_allclose(curve.std[1], math.sqrt(2.0))  # 3, 5
    half = 12.7062 * math.sqrt(2.0) / math.sqrt(2)
    np.testing.assert_allclose([curve.ci_low[1], curve.ci_high[1]], [4.0 - half, 4.0 + half])
    np.testing.assert_allclose(curve.ci_high[0] - curve.mean[0], 4.3027 / math.sqrt(3))
    assert group.diverged == 1
    assert (group.final.mean, group.final.std, group.final.n) == (1.5, math.sqrt(0.5), 2)
    # Threshold 2.0 (min): a at 10, b at 20, the diverged run never.
    assert (group.steps_to_threshold.mean, group.steps_to_threshold.n) == (15.0, 2)


def test_common_grid_is_thinned_evenly_keeping_both_ends() -> None:
    grid = common_grid([np.arange(0, 1000, 2), np.arange(1, 1000, 2)], 11)
    assert grid.tolist() == [0, 100, 200, 300, 400, 500, 599, 699, 799, 899, 999]


def test_best_group_prefers_no_divergence_then_fewest_steps_then_final() -> None:
    fast_but_risky = build_group(
        0.99, [_member(1, [0, 1], [3, 1]), _member(2, [0, 1], [3, NAN])], 10
    )
    slow = build_group(0.0, [_member(3, [0, 4, 8], [3, 2.5, 2]), _member(4, [0, 8], [3, 1.9])], 10)
    quick = build_group(0.9, [_member(5, [0, 2], [3, 2]), _member(6, [0, 4], [3, 1.0])], 10)
    best, criterion = best_group([fast_but_risky, slow, quick], "min", 2.0, "loss") or (None, "")
    assert best is quick and "fewest mean steps to loss <= 2" in criterion
    assert "no run diverged" in criterion
    by_final, why = best_group([fast_but_risky, slow, quick], "min", None, "loss") or (None, "")
    assert by_final is quick and why.startswith("lowest mean final loss")
    only_risky, why = best_group([fast_but_risky], "min", None, "loss") or (None, "")
    assert only_risky is fast_but_risky and "every group had a diverged run" in why
