"""Alembic, driven from code: the CLI, the app's readiness check and the tests use this."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

import migrations
from service.settings import Settings

MIGRATIONS_DIR = Path(migrations.__file__).parent
UPGRADE_HINT = "run `momentum db upgrade` (or start `momentum serve --upgrade`)"


def alembic_config(settings: Settings) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["settings"] = settings
    return config


def upgrade(settings: Settings, revision: str = "head") -> None:
    command.upgrade(alembic_config(settings), revision)


def downgrade(settings: Settings, revision: str) -> None:
    command.downgrade(alembic_config(settings), revision)


@cache  # the scripts are read from disk; they do not change while the process runs
def head_revision() -> str | None:
    return ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def pending_migrations(connection: Connection) -> str | None:
    """Why the schema is not the code's (a sentence naming the command), or None."""
    current, head = current_revision(connection), head_revision()
    if current == head:
        return None
    at = f"revision {current}" if current else "no revision (an empty database)"
    return f"the database schema is at {at}, this version needs {head}: {UPGRADE_HINT}"


class SchemaGate:
    """Whether the database schema is at the code's head: asked until it is, then trusted
    (migrations only move forward; a newer schema comes with a newer server)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.ready = False

    def pending(self) -> str | None:
        """None when the schema is current; else why not. Raises if the database is away."""
        if self.ready:
            return None
        with self.engine.connect() as connection:
            reason = pending_migrations(connection)
        self.ready = reason is None
        return reason
