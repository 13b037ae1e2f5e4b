"""What a running app holds, typed: built when its lifespan starts, closed when it ends.

Handlers reach it through `service.deps.app_state`, never through `app.state` lookups.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from service.db import GroupCommit, make_engine, make_sessionmaker
from service.migrate import SchemaGate
from service.observability import Observability
from service.settings import Settings


@dataclass
class AppState:
    settings: Settings
    observability: Observability
    engine: Engine
    sessions: sessionmaker[Session]
    # 503 migrations_pending until the schema is at the code's head (service.deps).
    schema_gate: SchemaGate
    # SQLite's ingest writer (service/db.py GroupCommit); PostgreSQL has none: there each
    # request writes in a transaction of its own.
    ingest_writer: GroupCommit | None
    # Server-sent event streams open in this process (service/api/events.py).
    open_event_streams: int = 0

    @classmethod
    def open(cls, settings: Settings, observability: Observability) -> AppState:
        """Engine, sessions and writer: nothing connects until the first use."""
        engine = make_engine(settings)
        sessions = make_sessionmaker(engine)
        writer = GroupCommit(sessions) if settings.is_sqlite else None
        return cls(settings, observability, engine, sessions, SchemaGate(engine), writer)

    def close(self) -> None:
        """The writer finishes what is queued and its thread ends, then the engine goes."""
        if self.ingest_writer is not None:
            self.ingest_writer.close()
        self.engine.dispose()
