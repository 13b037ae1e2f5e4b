"""Verdicts as the API answers them: each run's curve reduced to one number (the
summaries of compare/summary), runs grouped by a parameter (as compare/groups groups
them), the statistics of `service.analysis.verdict`, and the sentence of
`service.analysis.verdict_text`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from momentum.contract import Verdict, VerdictBest, VerdictComparison, VerdictGroup
from service.analysis import verdict as stats
from service.analysis.groups import value_order
from service.analysis.summary import Mode
from service.analysis.verdict_text import Wording, sentence
from service.comparison import group_key, param_value, read_curves, unknown_parameter
from service.models import Run


@dataclass(frozen=True)
class VerdictRequest:
    key: str
    by: str
    mode: Mode = "min"
    summary: stats.Summary = "tail_mean"
    threshold: float | None = None
    confidence: float = 0.95


def run_numbers(
    session: Session, runs: Sequence[Run], ask: VerdictRequest
) -> dict[int, stats.RunNumber]:
    """Each run's one number: its `summary` of `key` (compare/summary's definitions)."""
    curves = read_curves(session, runs, ask.key)
    rule = (ask.summary, ask.mode, ask.threshold)
    return {
        run.id: stats.run_number(
            run.id, (curves[run.id]["step"], curves[run.id]["value"]), run.diverged, rule
        )
        for run in runs
    }


def grouped(runs: Sequence[Run], by: str) -> list[tuple[Any, list[Run]]]:
    """(value, runs) per value of the parameter, in value order (as compare/groups)."""
    values = {run.id: param_value(run, by) for run in runs}
    if runs and all(value is None for value in values.values()):
        raise unknown_parameter(runs, by)
    members: dict[str, list[Run]] = {}
    shown: dict[str, Any] = {}
    for run in runs:
        key = group_key(values[run.id])
        members.setdefault(key, []).append(run)
        shown.setdefault(key, values[run.id])
    ordered = sorted(members, key=lambda k: value_order(shown[k]))
    return [(shown[k], members[k]) for k in ordered]


def judge(session: Session, runs: Sequence[Run], ask: VerdictRequest) -> Verdict:
    """The verdict on `runs` grouped by `ask.by`; every number as docs/verdict.md says."""
    groups_of_runs = grouped(runs, ask.by)
    numbers = run_numbers(session, runs, ask)
    groups = [
        stats.group_stats(value, [numbers[run.id] for run in members], ask.confidence)
        for value, members in groups_of_runs
    ]
    better = stats.better_of(ask.summary, ask.mode)
    best = stats.pick_best(groups, better)
    alpha = 1 - ask.confidence
    against = [
        (group, stats.compare_with_best(group, best, alpha))
        for group in groups
        if best is not None and group is not best
    ]
    words = Wording(ask.by, ask.key, ask.summary, ask.mode, better, ask.threshold)
    return Verdict(
        by=ask.by,
        key=ask.key,
        mode=ask.mode,
        summary=ask.summary,
        confidence=ask.confidence,
        threshold=ask.threshold,
        groups=[VerdictGroup.model_validate(group, from_attributes=True) for group in groups],
        best=None
        if best is None or best.mean is None
        else VerdictBest(value=best.value, mean=best.mean),
        comparisons=[
            VerdictComparison.model_validate(comparison, from_attributes=True)
            for _, comparison in against
        ],
        verdict=sentence(words, groups, best, against),
    )
