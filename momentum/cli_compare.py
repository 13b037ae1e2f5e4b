"""`momentum compare` (a ranked table, or groups by a parameter) and `momentum export` (CSV).

momentum compare 1 2 3 --key loss --threshold 0.1 --baseline 1
momentum compare 1,2,3,4 --by momentum          # mean ± std per momentum across seeds
momentum compare --sweep 7                      # a sweep, grouped by its grid field
momentum export 1 2 3 --keys loss,accuracy -o runs.csv
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from momentum.cli_common import api, connection_options, print_table

if TYPE_CHECKING:
    from momentum.contract import CompareSummary, GroupComparison, Stat


def parse_run_ids(specs: tuple[str, ...]) -> list[int]:
    """`1 2 3` or `1,2,3` (or both) -> [1, 2, 3]."""
    run_ids = []
    for spec in specs:
        for item in spec.split(","):
            item = item.strip()
            if not item:
                continue
            if not (item.isascii() and item.isdigit()):
                raise click.BadParameter(f"{item!r} is not a run id", param_hint="RUN_IDS")
            run_ids.append(int(item))
    return run_ids


def number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return f"[red]{value}[/]"  # NaN, Infinity: divergence
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def mean_std(stat: Stat, of: int | None = None) -> str:
    if stat.mean is None:
        return "-"
    shown = f"{stat.mean:.4g}" + (f" ± {stat.std:.2g}" if stat.std is not None else "")
    return shown + (f" ({stat.n}/{of})" if of is not None and stat.n != of else "")


def summary_table(result: CompareSummary) -> None:
    place = {run_id: index + 1 for index, run_id in enumerate(result.ranking)}
    rows = [
        [
            str(place[run.run_id]),
            str(run.run_id),
            run.run_name,
            number(run.final),
            number(run.best),
            number(run.best_step),
            number(run.tail_mean),
            number(run.steps_to_threshold),
            number(run.auc),
            "[red]yes[/]" if run.diverged else "no",
            "-" if run.speedup is None else f"{run.speedup:.2f}x",
        ]
        for run in sorted(result.runs, key=lambda run: place[run.run_id])
    ]
    threshold = "" if result.threshold is None else f", threshold {result.threshold:g}"
    columns = ["#", "run", "name", "final", "best", "best step", "tail mean"]
    columns += ["steps to thr", "auc", "diverged", "speedup"]
    title = f"{result.key} ({result.mode}{threshold})"
    print_table(title, columns, rows, caption=f"ranked: {result.criterion}")


def groups_table(result: GroupComparison) -> None:
    best = result.best.value if result.best is not None else None
    rows = [
        [
            ("[bold green]" + str(group.value) + " *[/]")
            if result.best is not None and group.value == best
            else str(group.value),
            str(group.runs),
            f"[red]{group.diverged}[/]" if group.diverged else "0",
            mean_std(group.final, group.runs),
            mean_std(group.steps_to_threshold, group.runs),
            ",".join(str(run_id) for run_id in group.run_ids),
        ]
        for group in result.groups
    ]
    threshold = "" if result.threshold is None else f", threshold {result.threshold:g}"
    sweep = f"sweep {result.sweep_id}: " if result.sweep_id is not None else ""
    columns = [result.by, "runs", "diverged", f"final {result.key}", "steps to thr", "run ids"]
    caption = f"* best: {result.best.criterion}" if result.best is not None else "no best setting"
    title = f"{sweep}{result.key} by {result.by} ({result.mode}{threshold})"
    print_table(title, columns, rows, caption=caption)


@click.command()
@click.argument("run_ids", nargs=-1)
@click.option("--key", default="loss", show_default=True, help="Metric key to compare.")
@click.option("--mode", type=click.Choice(["min", "max"]), default="min", show_default=True)
@click.option("--threshold", type=float, help="Target value: steps to reach it, speedup.")
@click.option("--baseline", type=int, help="Run id that speedups are relative to.")
@click.option("--by", help="Group by this parameter (momentum, lr, optimizer, seed, ...).")
@click.option("--sweep", "sweep_id", type=int, help="Compare a sweep's runs, grouped.")
@connection_options
def compare(
    run_ids: tuple[str, ...],
    key: str,
    mode: str,
    threshold: float | None,
    baseline: int | None,
    by: str | None,
    sweep_id: int | None,
    url: str | None,
    token: str | None,
) -> None:
    """Rank RUN_IDS on a metric (final, best, steps to threshold, AUC, speedup), or group
    them (--by) or a sweep (--sweep) by a parameter with mean ± std across seeds."""
    ids = parse_run_ids(run_ids)
    if sweep_id is None and not ids:
        raise click.UsageError("give run ids (1 2 3 or 1,2,3) or --sweep ID")
    if sweep_id is not None and ids:
        raise click.UsageError("give run ids or --sweep, not both")
    with api(url, token) as client:
        if sweep_id is not None:
            groups = client.sweep_summary(sweep_id, key, by=by, mode=mode, threshold=threshold)
            groups_table(groups)
        elif by is not None:
            groups = client.compare_groups(ids, key, by=by, mode=mode, threshold=threshold)
            groups_table(groups)
        else:
            summary = client.compare_summary(
                ids, key, mode=mode, threshold=threshold, baseline=baseline
            )
            summary_table(summary)


@click.command()
@click.argument("run_ids", nargs=-1, required=True)
@click.option("--keys", help="Comma-separated metric keys [default: all of each run's].")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, writable=True), help="File [default: stdout]."
)
@connection_options
def export(
    run_ids: tuple[str, ...],
    keys: str | None,
    output: str | None,
    url: str | None,
    token: str | None,
) -> None:
    """Write the runs' points as long-format CSV (run, params, key, step, value, wall_time)."""
    ids = parse_run_ids(run_ids)
    chosen = keys.split(",") if keys else None
    with api(url, token) as client:
        if output is None:
            client.export_csv(ids, sys.stdout.buffer, chosen)
            return
        with open(output, "wb") as out:
            written = client.export_csv(ids, out, chosen)
    click.echo(f"wrote {written:,} bytes to {output}", err=True)
