"""`momentum verdict`: which value of a parameter is best, how sure we are, and how many
runs per value would settle the rest.

momentum verdict --sweep 7                          # a sweep, grouped as its summary
momentum verdict 1,2,3,4 --by momentum              # these runs, by momentum
momentum verdict --sweep 7 --summary steps_to_threshold --threshold 0.1
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from momentum.cli_common import api, connection_options, print_table
from momentum.cli_compare import parse_run_ids

if TYPE_CHECKING:
    from momentum.contract import Verdict, VerdictComparison, VerdictGroup

SUMMARIES = ("final", "best", "tail_mean", "auc", "steps_to_threshold")


def _number(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def _p_value(comparison: VerdictComparison | None) -> str:
    if comparison is None or comparison.p_value is None:
        return "-"
    shown = "<0.001" if comparison.p_value < 0.001 else f"{comparison.p_value:.2g}"
    return f"[green]{shown}[/]" if comparison.significant else shown


def _row(
    group: VerdictGroup, comparison: VerdictComparison | None, best: bool, bounds: bool
) -> list[str]:
    spread = "" if group.std is None else f" ± {group.std:.2g}"
    at_least = "≥ " if bounds and group.reached < group.n else ""  # never-reached runs
    interval = "-" if group.ci_low is None else f"{group.ci_low:.4g} .. {group.ci_high:.4g}"
    return [
        f"[bold green]{group.value} *[/]" if best else str(group.value),
        str(group.n),
        "-" if group.mean is None else f"{at_least}{group.mean:.4g}{spread}",
        interval,
        f"{group.reached}/{group.n}",
        f"[red]{group.diverged}[/]" if group.diverged else "0",
        "-" if comparison is None else _number(comparison.difference),
        _p_value(comparison),
        "-"
        if comparison is None or comparison.seeds_needed is None
        else str(comparison.seeds_needed),
        ",".join(str(run_id) for run_id in group.run_ids),
    ]


def verdict_table(result: Verdict) -> None:
    """The groups (best starred) and, under them, the verdict's sentence."""
    best = result.best.value if result.best is not None else object()  # no group's value
    against = {repr(c.value): c for c in result.comparisons}
    bounds = result.summary == "steps_to_threshold"
    rows = [
        _row(group, against.get(repr(group.value)), group.value == best, bounds)
        for group in result.groups
    ]
    level = f"{result.confidence:.0%}"
    columns = [result.by, "n", "mean ± std", f"{level} CI", "reached", "diverged"]
    columns += ["vs best", "p (Welch)", "runs needed", "run ids"]
    threshold = "" if result.threshold is None else f", threshold {result.threshold:g}"
    sweep = f"sweep {result.sweep_id}: " if result.sweep_id is not None else ""
    title = f"{sweep}{result.summary} of {result.key} by {result.by} ({result.mode}{threshold})"
    print_table(title, columns, rows, wrapping=frozenset({"run ids"}))
    click.echo(result.verdict)


@click.command()
@click.argument("run_ids", nargs=-1)
@click.option("--sweep", "sweep_id", type=int, help="Judge a sweep's runs.")
@click.option("--key", default="loss", show_default=True, help="Metric key.")
@click.option("--by", help="Group by this parameter [default: momentum; a sweep's grid field].")
@click.option("--mode", type=click.Choice(["min", "max"]), default="min", show_default=True)
@click.option(
    "--summary", type=click.Choice(SUMMARIES), default="tail_mean", show_default=True,
    help="Each run's one number.",
)  # fmt: skip
@click.option("--threshold", type=float, help="Target value (needed by steps_to_threshold).")
@click.option("--confidence", type=float, default=0.95, show_default=True)
@connection_options
def verdict(
    run_ids: tuple[str, ...],
    sweep_id: int | None,
    key: str,
    by: str | None,
    mode: str,
    summary: str,
    threshold: float | None,
    confidence: float,
    url: str | None,
    token: str | None,
) -> None:
    """Which value of a parameter is best across seeds (mean, t interval), whether each
    other value is told apart from it (Welch's test), and how many runs would tell."""
    ids = parse_run_ids(run_ids)
    if (sweep_id is None) == (not ids):
        raise click.UsageError("give run ids (1 2 3 or 1,2,3) or --sweep ID, one of them")
    with api(url, token) as client:
        if sweep_id is not None:
            result = client.sweep_verdict(
                sweep_id, key, by=by, mode=mode, summary=summary, threshold=threshold,
                confidence=confidence,
            )  # fmt: skip
        else:
            result = client.compare_verdict(
                ids, key, by=by or "momentum", mode=mode, summary=summary, threshold=threshold,
                confidence=confidence,
            )  # fmt: skip
    verdict_table(result)
