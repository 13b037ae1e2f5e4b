"""The verdict's statistics and sentence on hand-made numbers: every rule of
docs/verdict.md, each edge (one run, no spread, equal means, every run diverged), and
the issue's own example sentence word for word."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from service.analysis import verdict as stats
from service.analysis.verdict_text import Wording, sentence


def group(value: object, xs: list[float], diverged: int = 0, confidence: float = 0.95):
    numbers = [stats.RunNumber(i, x, False, True) for i, x in enumerate(xs)]
    numbers += [stats.RunNumber(100 + i, math.nan, True, False) for i in range(diverged)]
    return stats.group_stats(value, numbers, confidence)


def test_a_run_that_never_reaches_the_threshold_counts_as_its_last_step_plus_one() -> None:
    steps = np.array([0, 10, 20])
    never, once = (steps, np.array([1.0, 0.8, 0.6])), (steps, np.array([1.0, 0.4, 0.6]))
    to_half = ("steps_to_threshold", "min", 0.5)
    assert stats.run_number(1, never, False, to_half) == stats.RunNumber(1, 21.0, False, False)
    assert stats.run_number(2, once, False, to_half) == stats.RunNumber(2, 10.0, False, True)
    assert stats.run_number(2, once, False, ("final", "min", None)).value == 0.6
    assert stats.run_number(2, once, False, ("best", "max", None)).value == 1.0
    assert stats.run_number(2, once, False, ("auc", "min", None)).value == pytest.approx(12.0)
    nan = (steps, np.array([1.0, 0.4, math.nan]))
    assert stats.run_number(3, nan, False, ("best", "min", None)).diverged  # NaN in the curve
    assert stats.run_number(4, once, True, ("best", "min", None)).diverged  # the flag alone
    empty = (np.array([], dtype=np.int64), np.array([]))
    assert stats.run_number(5, empty, False, ("tail_mean", "min", None)).value is None


def test_group_statistics_sample_std_and_t_interval() -> None:
    xs = [0.1, 0.14, 0.12, 0.11]
    got = group(0.9, xs, diverged=1, confidence=0.9)
    half = scipy.stats.t.ppf(0.95, 3) * np.std(xs, ddof=1) / 2
    assert (got.n, got.diverged, got.reached, got.run_ids[-1]) == (4, 1, 4, 100)
    assert got.std == pytest.approx(np.std(xs, ddof=1), rel=1e-12)
    assert (got.ci_low, got.ci_high) == pytest.approx((np.mean(xs) - half, np.mean(xs) + half))
    alone = group(0.5, [0.3])
    assert (alone.mean, alone.std, alone.ci_low, alone.ci_high) == (0.3, None, None, None)
    assert group(0.99, [], diverged=2).mean is None


def test_the_best_avoids_groups_with_a_diverged_run_unless_every_group_has_one() -> None:
    safe, risky = group(0.9, [0.2, 0.3]), group(0.99, [0.01, 0.02], diverged=1)
    assert stats.pick_best([safe, risky], "min") is safe
    assert stats.pick_best([group(0.9, [0.2], 1), risky], "min").value == 0.99
    assert stats.pick_best([safe, group(0.5, [0.5, 0.6])], "max").value == 0.5
    assert stats.pick_best([group(0.5, [], diverged=2)], "min") is None
    assert stats.better_of("steps_to_threshold", "max") == "min"  # fewer steps, always


def test_welch_test_and_seeds_needed_match_scipy_stats() -> None:
    a, b = [0.5, 0.6, 0.55, 0.52], [0.3, 0.45, 0.35]
    got = stats.compare_with_best(group(0.5, a), group(0.9, b), alpha=0.01)
    want = scipy.stats.ttest_ind(a, b, equal_var=False).pvalue
    assert got.p_value == pytest.approx(want, rel=1e-9)
    assert got.difference == pytest.approx(np.mean(a) - np.mean(b))
    assert want > 0.01 and got.significant is False
    z = scipy.stats.norm.ppf(0.995) + scipy.stats.norm.ppf(0.8)
    spread = (np.var(a, ddof=1) + np.var(b, ddof=1)) / 2
    assert got.seeds_needed == math.ceil(2 * z**2 * spread / (np.mean(a) - np.mean(b)) ** 2)
    significant = stats.compare_with_best(group(0.5, a), group(0.9, b), alpha=0.05)
    assert significant.significant and significant.seeds_needed is None


def test_untestable_comparisons_say_null() -> None:
    flat = stats.compare_with_best(group(0.5, [0.4, 0.4]), group(0.9, [0.2, 0.2]), 0.05)
    assert (flat.p_value, flat.significant, flat.seeds_needed) == (None, False, None)
    one = stats.compare_with_best(group(0.5, [0.4]), group(0.9, [0.2, 0.3]), 0.05)
    assert (one.p_value, one.seeds_needed, one.difference) == (None, None, pytest.approx(0.15))
    equal = stats.compare_with_best(group(0.5, [0.2, 0.3]), group(0.9, [0.3, 0.2]), 0.05)
    assert (equal.p_value, equal.seeds_needed) == (pytest.approx(1.0), None)


def words(summary: str = "tail_mean", mode: str = "min") -> Wording:
    better = stats.better_of(summary, mode)  # type: ignore[arg-type]
    return Wording("momentum", "loss", summary, mode, better, 0.1)  # type: ignore[arg-type]


def comparison(g: stats.GroupStats, best: stats.GroupStats, p: float | None, needed=None):
    difference = None if g.mean is None or best.mean is None else g.mean - best.mean
    significant = p is not None and p < 0.05
    return g, stats.Comparison(g.value, best.value, difference, p, significant, needed)


def test_the_issues_example_sentence_word_for_word() -> None:
    best = stats.GroupStats(0.9, [1, 2, 3, 4, 5], 5, 0.012, 0.003, 0.008, 0.016, 5, 0, 0)
    slow, close, wild = group(0.5, [0.05, 0.06]), group(0.95, [0.013, 0.02]), group(0.99, [1, 2])
    against = [comparison(slow, best, 0.003), comparison(close, best, 0.31, 14)]
    against.append(comparison(wild, best, 0.0004))
    assert sentence(words(), [slow, best, close, wild], best, against) == (
        "momentum=0.9 has the lowest mean tail loss (0.012 ± 0.003, 5 runs); it beats 0.5 "
        "(p=0.003) and 0.99 (p<0.001); 0.95 is not distinguishable yet (p=0.31): about 14 "
        "runs per value would tell a difference this size."
    )


def test_sentences_for_lower_bounds_divergence_and_too_few_runs() -> None:
    best = stats.GroupStats(0.9, [1, 2], 2, 120.0, 10.0, None, None, 1, 0, 0)
    slow = stats.GroupStats(0.0, [3, 4], 2, 800.0, 5.0, None, None, 0, 0, 0)
    text = sentence(words("steps_to_threshold"), [slow, best], best, [comparison(slow, best, 1e-4)])
    assert text == (
        "momentum=0.9 reaches loss <= 0.1 in the fewest steps on average (at least 120 ± 10, "
        "2 runs); it beats 0.0 (at least 800 steps, p<0.001)."
    )
    lone, wild = group(0.5, [0.3]), group(0.99, [0.01, 0.02], diverged=1)
    safe = group(0.9, [0.2, 0.25])
    pairs = [comparison(lone, safe, None), comparison(wild, safe, 0.01)]
    assert sentence(words("final"), [lone, safe, wild], safe, pairs) == (
        "momentum=0.9 has the lowest mean final loss (0.225 ± 0.035, 2 runs); 0.5 is not "
        "distinguishable yet (1 run; a test needs 2 per value); 0.99 has a lower mean "
        "(p=0.01) but 1 of its runs diverged; 1 run of 0.99 diverged (left out)."
    )
    gone = group(0.99, [], diverged=3)
    assert sentence(words("auc"), [safe, gone], safe, [comparison(gone, safe, None)]) == (
        "momentum=0.9 is the only value with runs to judge (0.225 ± 0.035, 2 runs): nothing "
        "to compare it with; every run of 0.99 diverged."
    )
    assert sentence(words(), [gone], None, []) == "No verdict: every run diverged."
    assert sentence(words(), [], None, []) == "No verdict yet: no run has a point of loss."
    assert sentence(words("best", "max"), [safe], safe, []).startswith(
        "momentum=0.9 is the only value (0.225 ± 0.035, 2 runs)"
    )


def test_numbers_at_the_float_limits_answer_null_never_an_error() -> None:
    huge = group(0.5, [1.5e308, 1.6e308, 1.7e308])
    assert huge.n == 3 and huge.mean is None and huge.std is None
    wide = group(0.9, [1e200, -1e200, 3e200])
    assert wide.mean is not None and wide.std is None
    tiny = stats.compare_with_best(group(0.5, [1.0, 1.0 + 1e-300]), group(0.9, [1.0, 1.0]), 0.05)
    assert tiny.seeds_needed is None
    sure = group(0.9, [0.1, 0.2], confidence=1 - 1e-17)  # the interval is the whole line
    assert (sure.ci_low, sure.ci_high) == (None, None)
    strict = stats.compare_with_best(group(0.5, [0.1, 0.3]), group(0.9, [0.2, 0.25]), 1e-300)
    assert strict.p_value is not None and not strict.significant
    assert stats.compare_with_best(wide, group(0.5, [1e200, 2e200]), 0.05).p_value is None
