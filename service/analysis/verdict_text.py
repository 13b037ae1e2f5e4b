"""The verdict as one plain sentence, built only from the numbers the answer carries:

    momentum=0.9 has the lowest mean tail loss (0.012 ± 0.003, 5 runs); it beats 0.5
    (p=0.003) and 0.99 (p<0.001); 0.95 is not distinguishable yet (p=0.31): about 14
    runs per value would tell a difference this size.

`±` is the sample standard deviation across the runs. For steps_to_threshold a mean
that stands on a run which never reached the threshold is a lower bound: "at least".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from service.analysis.summary import Mode
from service.analysis.verdict import Comparison, GroupStats, Summary

_QUANTITY = {"final": "final {key}", "best": "best {key}", "tail_mean": "tail {key}"}
_QUANTITY["auc"] = "area under the {key} curve"


@dataclass(frozen=True)
class Wording:
    by: str
    key: str
    summary: Summary
    mode: Mode
    better: Mode  # which way the summary improves (fewer steps, whatever the mode)
    threshold: float | None


def shown(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return json.dumps(value)


def number(x: float, digits: int = 3) -> str:
    return f"{x:.0f}" if abs(x) >= 100 else f"{x:.{digits}g}"


def p_text(p_value: float) -> str:
    return "p<0.001" if p_value < 0.001 else f"p={p_value:.2g}"


def runs(n: int) -> str:
    return f"{n} run" if n == 1 else f"{n} runs"


def lower_bound(words: Wording, group: GroupStats) -> bool:
    return words.summary == "steps_to_threshold" and group.reached < group.n


def stat_text(words: Wording, group: GroupStats) -> str:
    assert group.mean is not None
    text = number(group.mean) + ("" if group.std is None else f" ± {number(group.std, 2)}")
    return ("at least " if lower_bound(words, group) else "") + text


def best_clause(words: Wording, best: GroupStats, alone: bool, others: bool) -> str:
    stat = f"({stat_text(words, best)}, {runs(best.n)})"
    setting = f"{words.by}={shown(best.value)}"
    if alone:
        which = "the only value with runs to judge" if others else "the only value"
        return f"{setting} is {which} {stat}: nothing to compare it with"
    if words.summary == "steps_to_threshold":
        compare = "<=" if words.mode == "min" else ">="
        target = f"{words.key} {compare} {words.threshold:g}"
        return f"{setting} reaches {target} in the fewest steps on average {stat}"
    extreme = "lowest" if words.better == "min" else "highest"
    quantity = _QUANTITY[words.summary].format(key=words.key)
    return f"{setting} has the {extreme} mean {quantity} {stat}"


def listed(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def bound(words: Wording, group: GroupStats) -> str:
    """ "at least N steps, " for a group whose mean is a lower bound, else nothing."""
    if not lower_bound(words, group) or group.mean is None:
        return ""
    return f"at least {number(group.mean)} steps, "


def beaten_item(words: Wording, group: GroupStats, comparison: Comparison) -> str:
    assert comparison.p_value is not None
    return f"{shown(group.value)} ({bound(words, group)}{p_text(comparison.p_value)})"


def undecided_clause(
    words: Wording, group: GroupStats, best: GroupStats, comparison: Comparison
) -> str:
    """Why the group is not told apart from the best yet, and what would tell."""
    value = shown(group.value)
    if lower_bound(words, group):
        value += f" ({bound(words, group)[:-2]})"
    if comparison.p_value is None:
        if group.n < 2 or best.n < 2:
            fewest = runs(min(group.n, best.n))
            return f"{value} is not distinguishable yet ({fewest}; a test needs 2 per value)"
        return f"{value} cannot be tested: every run of both values gave the same number"
    clause = f"{value} is not distinguishable yet ({p_text(comparison.p_value)})"
    if comparison.seeds_needed is None:
        return clause + ": the means are equal"
    return (
        f"{clause}: about {comparison.seeds_needed} runs per value would tell a "
        "difference this size"
    )


def better_but_diverged(words: Wording, group: GroupStats, comparison: Comparison) -> str:
    direction = "lower" if words.better == "min" else "higher"
    tested = "" if comparison.p_value is None else f" ({p_text(comparison.p_value)})"
    return (
        f"{shown(group.value)} has a {direction} mean{tested} but "
        f"{group.diverged} of its runs diverged"
    )


def is_better(words: Wording, difference: float) -> bool:
    return difference < 0 if words.better == "min" else difference > 0


def left_out(words: Wording, groups: list[GroupStats]) -> list[str]:
    """Runs left out, named by group: a verdict never hides a diverged run."""
    clauses = []
    for group in groups:
        value = shown(group.value)
        if group.diverged and group.n == 0:
            clauses.append(f"every run of {value} diverged")
        elif group.diverged:
            clauses.append(f"{runs(group.diverged)} of {value} diverged (left out)")
        elif group.n == 0:
            clauses.append(f"{value} has no run with a point of {words.key} yet")
    return clauses


def sentence(
    words: Wording,
    groups: list[GroupStats],
    best: GroupStats | None,
    against: list[tuple[GroupStats, Comparison]],
) -> str:
    """One plain sentence from the numbers: the best, whom it beats, what is undecided."""
    if best is None:
        if any(group.diverged for group in groups):
            return "No verdict: every run diverged."
        return f"No verdict yet: no run has a point of {words.key}."
    alone = all(group.mean is None for group, _ in against)
    clauses = [best_clause(words, best, alone, others=bool(against))]
    beaten, others = [], []
    for group, comparison in against:
        if group.mean is None or comparison.difference is None:
            continue  # no number: left_out says why
        if is_better(words, comparison.difference):
            others.append(better_but_diverged(words, group, comparison))
        elif comparison.significant:
            beaten.append(beaten_item(words, group, comparison))
        else:
            others.append(undecided_clause(words, group, best, comparison))
    if beaten:
        clauses.append("it beats " + listed(beaten))
    clauses += others + left_out(words, groups)
    return "; ".join(clauses) + "."
