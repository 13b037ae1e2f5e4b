"""`momentum db backup`: a consistent copy of a live SQLite database in one file.

SQLite's online backup API copies the database page by page from inside one read
transaction, so the copy is the database as of one commit even while the service keeps
writing: in WAL mode the service's writers are not blocked, and whatever they commit
after the backup began is simply not in it. The copy is done in a single step (a backup
done in several steps restarts whenever another connection writes, and an ingesting
service writes all the time). PostgreSQL is backed up with its own tools (`pg_dump`).
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from service.settings import Settings

PG_DUMP_HINT = (
    "back up PostgreSQL with its own tools, e.g. "
    "`pg_dump --format=custom --file=momentum.dump DBNAME` "
    "(restore: `pg_restore --clean --if-exists --no-owner --dbname=DBNAME momentum.dump`)"
)


class BackupError(Exception):
    """A backup that cannot be made; the message says why and what to do instead."""


@dataclass(frozen=True)
class BackupReport:
    path: Path
    size_bytes: int
    revision: str | None


def sqlite_path(url: str) -> Path:
    """The file behind a SQLite URL; BackupError for any other database."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        raise BackupError(
            f"`momentum db backup` copies SQLite files; this is a "
            f"{parsed.get_backend_name()} database: {PG_DUMP_HINT}"
        )
    if not parsed.database or parsed.database == ":memory:":
        raise BackupError("an in-memory SQLite database has no file to back up")
    return Path(parsed.database)


def backup(settings: Settings, destination: Path) -> BackupReport:
    """Copy the configured SQLite database to `destination` (a new file) and check it."""
    source = sqlite_path(settings.sqlalchemy_url)
    if not source.is_file():
        raise BackupError(f"no database at {source}")
    if destination.exists():
        raise BackupError(f"{destination} exists; a backup never overwrites, name a new file")
    if destination.resolve() == source.resolve():
        raise BackupError("the backup must go to another file than the database")
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(f".{destination.name}.partial")
    partial.unlink(missing_ok=True)
    try:
        _copy(source, partial, settings.sqlite_busy_timeout_ms)
        revision = _check(partial)
        os.replace(partial, destination)
    finally:
        partial.unlink(missing_ok=True)
    return BackupReport(destination, destination.stat().st_size, revision)


def _copy(source: Path, target: Path, busy_timeout_ms: int) -> None:
    reader = sqlite3.connect(source, timeout=busy_timeout_ms / 1000)
    try:
        writer = sqlite3.connect(target)
        try:
            reader.backup(writer, pages=-1)  # one step: one snapshot, never restarted
            # A self-contained file: no -wal beside it to lose when it is copied elsewhere.
            writer.execute("PRAGMA journal_mode=DELETE")
        finally:
            writer.close()
    finally:
        reader.close()


def _check(path: Path) -> str | None:
    """quick_check the copy (structure, not every index entry); its schema revision."""
    connection = sqlite3.connect(path)
    try:
        problems = [row[0] for row in connection.execute("PRAGMA quick_check")]
        if problems != ["ok"]:
            raise BackupError(f"the copy failed its integrity check: {problems[:5]}")
        try:
            row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.OperationalError:
            return None
        return str(row[0]) if row else None
    finally:
        connection.close()
