"""`momentum diagnose RUN_ID`: what a run's curve shows and what usually helps (#21).

momentum diagnose 7                 # the loss
momentum diagnose 7 --key val_loss
"""

from __future__ import annotations

import click

from momentum.cli_common import api, connection_options, print_table

KIND_STYLES = {
    "oscillation": "yellow",
    "plateau": "cyan",
    "spike": "magenta",
    "divergence": "bold red",
    "overfitting": "red",
}


@click.command()
@click.argument("run_id", type=click.IntRange(min=1))
@click.option("--key", default="loss", show_default=True, help="Metric key to read.")
@connection_options
def diagnose(run_id: int, key: str, url: str | None, token: str | None) -> None:
    """Findings in RUN_ID's curve (oscillation, plateau, spike, divergence, overfitting),
    each with its steps, what it means and what usually helps."""
    from rich.markup import escape

    with api(url, token) as client:
        result = client.diagnose(run_id, key)
    if not result.findings:
        click.echo(f"run {run_id}: no findings in {key}: a clean curve")
        return
    rows = [
        [
            f"[{KIND_STYLES[f.kind]}]{f.kind}[/]",
            f"{f.from_step}–{f.to_step}",
            escape(f.message),
            escape(f.advice),
        ]
        for f in result.findings
    ]
    columns = ["finding", "steps", "message", "advice"]
    print_table(f"run {run_id}: {key}", columns, rows, wrapping=frozenset({"message", "advice"}))
