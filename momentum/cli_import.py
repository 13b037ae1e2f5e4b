"""`momentum import tensorboard LOGDIR` and `momentum import mlflow --from URI`: bring
history from other tools into the service (docs/import.md).

The readers (`tensorboard`, `mlflow-skinny`) are the optional `import` extra, loaded
inside the subcommand; without them the command says how to install them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from momentum.cli_common import api, connection_options


@click.group("import")
def import_history() -> None:
    """Import past runs from TensorBoard event files or an MLflow store (idempotent)."""


@import_history.command("tensorboard")
@click.argument("logdir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--project", default="default", show_default=True, help="Project of the runs.")
@connection_options
def import_tensorboard(logdir: Path, project: str, url: str | None, token: str | None) -> None:
    """Every directory under LOGDIR holding event files becomes a run named by its path
    relative to LOGDIR, with its scalars and hparams. Re-importing sends only what is new."""
    from momentum.importers.tensorboard import import_run_directory
    from momentum.importers.tensorboard_reader import (
        read_run_directory,
        require_reader,
        run_directories,
    )

    _required(require_reader)
    root = logdir.resolve()
    directories = run_directories(root)
    if not directories:
        raise click.ClickException(f"no event files (events.out.tfevents.*) under {logdir}")
    totals = [0, 0]
    with api(url, token) as client, _progress("runs", len(directories)) as advance:
        for directory in directories:
            run = read_run_directory(directory)
            done = import_run_directory(client, root, run, project)
            totals[0] += done.created
            totals[1] += done.points
            advance(f"{done.name}: run {done.run_id}, {done.points:,} new points")
    click.echo(
        f"{len(directories)} runs in project {project!r} ({totals[0]} new), "
        f"{totals[1]:,} points imported"
    )


@import_history.command("mlflow")
@click.option(
    "--from",
    "uri",
    required=True,
    help="MLflow tracking URI: a server (http://…) or a database (sqlite:///…, postgresql://…).",
)
@click.option("--experiment", help="Import only this experiment [default: every one].")
@connection_options
def import_mlflow(uri: str, experiment: str | None, url: str | None, token: str | None) -> None:
    """MLflow experiments become projects; runs come with params, tags, status, times and
    full metric histories. Re-importing creates no duplicates (by MLflow run id)."""
    from momentum.importers import MissingExtra
    from momentum.importers.mlflow import import_mlflow as run_import

    runs = [0, 0, 0]

    def report(done: Any) -> None:
        runs[0] += 1
        runs[1] += done.created
        runs[2] += done.points
        click.echo(f"{done.project}/{done.name}: run {done.run_id}, {done.points:,} new values")

    with api(url, token) as client:
        try:
            run_import(client, uri, experiment, report)
        except (MissingExtra, LookupError) as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"{runs[0]} runs ({runs[1]} new), {runs[2]:,} metric values imported")


def _required(check: Callable[[], object]) -> None:
    from momentum.importers import MissingExtra

    try:
        check()
    except MissingExtra as exc:
        raise click.ClickException(str(exc)) from exc


@contextmanager
def _progress(what: str, total: int) -> Iterator[Callable[[str], None]]:
    """A rich progress bar on a terminal; one line per item otherwise (logs, pipes)."""
    from rich.console import Console
    from rich.progress import Progress

    console = Console(stderr=True)
    if not console.is_terminal:
        yield lambda line: click.echo(line)
        return
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"importing {what}", total=total)

        def advance(line: str) -> None:
            progress.console.print(line, markup=False, highlight=False)
            progress.advance(task)

        yield advance
