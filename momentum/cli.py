"""The `momentum` command: the composition root.

Subcommands import the service or the trainer lazily, inside the command that needs
them, so `momentum serve` starts without torch and `momentum train` without FastAPI.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

import momentum
from momentum.cli_compare import compare, export
from momentum.cli_diagnose import diagnose
from momentum.cli_entry_points import entry_points
from momentum.cli_import import import_history
from momentum.cli_jobs import jobs, runs, submit, workers
from momentum.cli_sweeps import sweep, sweeps
from momentum.cli_train import sync, train
from momentum.cli_verdict import verdict
from momentum.cli_worker import worker
from momentum.up import up

if TYPE_CHECKING:
    from service.settings import Settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(momentum.__version__, prog_name="momentum")
def main() -> None:
    """Momentum Monitor: log training metrics, compare runs and momentum sweeps."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to bind.")
@click.option(
    "--workers", default=1, show_default=True, type=int, help="Service processes (uvicorn)."
)
@click.option(
    "--upgrade/--no-upgrade",
    default=None,
    help="Apply migrations before serving [default: yes on SQLite; on PostgreSQL no, and "
    "refuse to start until `momentum db upgrade` ran].",
)
@click.option("--log-level", default="info", show_default=True)
def serve(host: str, port: int, workers: int, upgrade: bool | None, log_level: str) -> None:
    """Run the HTTP service (settings from MOMENTUM_* environment variables)."""
    import uvicorn

    from service.settings import Settings

    _prepare_schema(Settings(), upgrade)
    uvicorn.run(
        "service.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        access_log=False,
    )


def _prepare_schema(settings: Settings, upgrade: bool | None) -> None:
    """Migrate when asked, and by default the embedded SQLite database (it has no other
    owner); by default refuse to serve a PostgreSQL schema behind the code's, whose
    upgrade is an operator's explicit step. `--no-upgrade` skips both: until someone
    migrates, the API answers 503 `migrations_pending`."""
    from sqlalchemy.engine import make_url

    from service.migrate import upgrade as apply_migrations

    sqlite = make_url(settings.sqlalchemy_url).get_backend_name() == "sqlite"
    if upgrade or (upgrade is None and sqlite):
        apply_migrations(settings)
    elif upgrade is None:
        reason = _pending_migrations(settings)
        if reason is not None:
            raise click.ClickException(f"not serving: {reason}")


def _pending_migrations(settings: Settings) -> str | None:
    """Why the schema is behind, or None; None too (with a warning) if the database is
    unreachable: the service starts and `/readyz` says so until it is back."""
    from sqlalchemy.exc import OperationalError

    from service.db import make_engine
    from service.migrate import pending_migrations

    engine = make_engine(settings)
    try:
        with engine.connect() as connection:
            return pending_migrations(connection)
    except OperationalError as exc:
        click.echo(f"warning: could not check the database schema: {exc.orig}", err=True)
        return None
    finally:
        engine.dispose()


@main.group()
def db() -> None:
    """Database schema and maintenance."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: head)."""
    from service.migrate import upgrade
    from service.settings import Settings

    settings = Settings()
    upgrade(settings, revision)
    click.echo(f"database at {revision}: {_redacted(settings.sqlalchemy_url)}")


@db.command("current")
def db_current() -> None:
    """Print the schema revision the database is at, and the code's head."""
    from service.db import make_engine
    from service.migrate import current_revision, head_revision
    from service.settings import Settings

    engine = make_engine(Settings())
    try:
        with engine.connect() as connection:
            current = current_revision(connection)
    finally:
        engine.dispose()
    click.echo(f"current: {current}\nhead:    {head_revision()}")


@db.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def db_backup(path: Path) -> None:
    """Copy the SQLite database to PATH (a new file), safely while the service runs.

    PostgreSQL: use pg_dump (see the message it prints)."""
    from service.backup import BackupError, backup
    from service.settings import Settings

    try:
        report = backup(Settings(), path)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"backed up to {report.path} ({report.size_bytes:,} bytes, revision {report.revision})"
    )


@db.command("copy")
@click.option(
    "--from",
    "source",
    help="Source database URL [default: the configured database, $MOMENTUM_DATABASE_URL].",
)
@click.option(
    "--to", "target", required=True, help="Target database URL: new and empty (migrated here)."
)
@click.option(
    "--batch-rows",
    default=1000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Rows per insert.",
)
def db_copy(source: str | None, target: str, batch_rows: int) -> None:
    """Copy every run, point, job, sweep, event, … into an empty database, e.g. from
    SQLite to PostgreSQL; verify row counts and digests. Stop the service first: what it
    writes after the copy starts is not copied."""
    from sqlalchemy.exc import OperationalError

    from service.dbcopy import CopyError, TableCopy, copy_database
    from service.settings import Settings

    source = source or Settings().sqlalchemy_url

    def progress(table: TableCopy) -> None:
        click.echo(f"  {table.name:<14} {table.rows:>12,} rows")

    click.echo(f"copying {_redacted(source)} -> {_redacted(target)}")
    try:
        report = copy_database(source, target, batch_rows=batch_rows, on_table=progress)
    except CopyError as exc:
        raise click.ClickException(str(exc)) from exc
    except OperationalError as exc:
        raise click.ClickException(f"database unreachable or refused: {exc.orig}") from exc
    click.echo(f"copied {report.rows:,} rows; counts and digests match")


main.add_command(train)
main.add_command(sync)
main.add_command(verdict)


for command in (
    worker,
    up,
    submit,
    sweep,
    sweeps,
    jobs,
    runs,
    workers,
    entry_points,
    compare,
    export,
    import_history,
):
    main.add_command(command)
main.add_command(diagnose)


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


if __name__ == "__main__":
    main()
