"""`momentum db copy`: move an installation's data to another database, e.g. SQLite to
PostgreSQL when it outgrows one machine (any direction works).

Generic over the models' metadata: every table in `Base.metadata` is copied, parents
before children, rows in primary-key order with their ids kept, so a table a migration
adds is copied too. The source must be at the code's head revision; the target is
migrated to head and must be empty (nothing but the rows the migrations themselves seed,
such as MLflow's experiment 0). The source is read in one snapshot (one read
transaction; REPEATABLE READ on PostgreSQL); the target is written in one transaction,
in batches, so a failed copy leaves it empty and the copy can simply be run again.
Afterwards the target's id sequences continue after the source's, and each table is read
back from the target and its row count and content digest compared with what was read.
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Integer, Table, func, inspect, select, text
from sqlalchemy.engine import make_url

from service.db import WRITE_OPTION, make_engine
from service.migrate import current_revision, head_revision, upgrade
from service.models import Base
from service.settings import Settings

BATCH_ROWS = 1000
BATCH_BYTES = 16 * 1024 * 1024  # point blocks are blobs of up to ~100 KB each


class CopyError(Exception):
    """A copy refused or failed; the message says why and what to do."""


@dataclass
class TableCopy:
    name: str
    rows: int = 0
    digest: str = ""


@dataclass
class CopyReport:
    tables: list[TableCopy] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(table.rows for table in self.tables)


def tables() -> Sequence[Table]:
    """Every table of the models, parents before the tables that refer to them."""
    return Base.metadata.sorted_tables


def copy_database(
    source_url: str,
    target_url: str,
    *,
    batch_rows: int = BATCH_ROWS,
    on_table: Callable[[TableCopy], None] | None = None,
) -> CopyReport:
    """Copy every table from `source_url` into the empty `target_url`; verify; report."""
    if _same_database(source_url, target_url):
        raise CopyError("--from and --to name the same database")
    source = make_engine(Settings(database_url=source_url))
    try:
        _check_source(source)
        target = make_engine(Settings(database_url=target_url))
        try:
            _refuse_data(target)  # before migrating: never touch a database in use
            target.dispose()
            upgrade(Settings(database_url=target_url))
            report = _copy(source, target, batch_rows, on_table)
            _verify(target, report)
            return report
        finally:
            target.dispose()
    finally:
        source.dispose()


def _same_database(a: str, b: str) -> bool:
    url_a, url_b = make_url(a), make_url(b)
    if url_a.get_backend_name() == url_b.get_backend_name() == "sqlite":
        if not url_a.database or not url_b.database:
            return False
        return Path(url_a.database).resolve() == Path(url_b.database).resolve()
    return url_a.render_as_string(hide_password=True) == url_b.render_as_string(hide_password=True)


def _check_source(source: Engine) -> None:
    with source.connect() as connection:
        revision = current_revision(connection)
    head = head_revision()
    if revision != head:
        raise CopyError(
            f"the source database is at revision {revision}, this code's head is {head}: "
            "upgrade it first (MOMENTUM_DATABASE_URL=<source> momentum db upgrade)"
        )


# --- the target must hold nothing ---------------------------------------------------


@cache
def seeded_keys() -> dict[str, frozenset[tuple[Any, ...]]]:
    """Primary keys of the rows the migrations themselves insert (experiment 0), read
    from a scratch SQLite database migrated to head."""
    with tempfile.TemporaryDirectory(prefix="momentum-seed-") as directory:
        url = f"sqlite:///{Path(directory) / 'seed.sqlite3'}"
        upgrade(Settings(database_url=url))
        engine = make_engine(Settings(database_url=url))
        try:
            with engine.connect() as connection:
                return {
                    table.name: frozenset(
                        tuple(row) for row in connection.execute(select(*table.primary_key))
                    )
                    for table in tables()
                }
        finally:
            engine.dispose()


def _refuse_data(target: Engine) -> None:
    """CopyError unless every table of the target is missing or holds only seeded rows."""
    with target.connect() as connection:
        present = set(inspect(connection).get_table_names())
        _refuse_rows(connection, [table for table in tables() if table.name in present])


def _refuse_rows(connection: Connection, checked: Sequence[Table]) -> None:
    seeds = seeded_keys()
    holding = []
    for table in checked:
        keys = select(*table.primary_key).limit(len(seeds[table.name]) + 1)
        if not {tuple(row) for row in connection.execute(keys)} <= seeds[table.name]:
            holding.append(table.name)
    if holding:
        raise CopyError(
            f"the target database is not empty (rows in {', '.join(holding)}): "
            "copy into a new, empty database"
        )


# --- copying --------------------------------------------------------------------------


def _copy(
    source: Engine,
    target: Engine,
    batch_rows: int,
    on_table: Callable[[TableCopy], None] | None,
) -> CopyReport:
    report = CopyReport()
    with _snapshot(source) as reader, _writing(target) as writer:
        _refuse_rows(writer, tables())  # again, inside the transaction that writes
        # Seeded rows make way for the source's own copies of them (same keys).
        for table in reversed(tables()):
            writer.execute(table.delete())
        for table in tables():
            done = TableCopy(table.name)
            digest = hashlib.sha256()
            for batch in _batches(reader, table, batch_rows):
                writer.execute(table.insert(), batch)
                for row in batch:
                    _digest_row(digest, row.values())
                done.rows += len(batch)
            done.digest = digest.hexdigest()
            _continue_ids(reader, writer, table)
            report.tables.append(done)
            if on_table is not None:
                on_table(done)
    return report


class _snapshot:
    """A read-only connection in one transaction: a consistent view of the source."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def __enter__(self) -> Connection:
        connection = self.engine.connect()
        if connection.dialect.name == "postgresql":
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
        self.connection = connection
        connection.begin()
        return connection

    def __exit__(self, *exc: object) -> None:
        self.connection.rollback()
        self.connection.close()


class _writing:
    """One write transaction on the target (BEGIN IMMEDIATE on SQLite)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def __enter__(self) -> Connection:
        self.connection = self.engine.connect().execution_options(**{WRITE_OPTION: True})
        self.transaction = self.connection.begin()
        return self.connection

    def __exit__(self, exc_type: object, *exc: object) -> None:
        try:
            if exc_type is None:
                self.transaction.commit()
            else:
                self.transaction.rollback()
        finally:
            self.connection.close()


def _batches(reader: Connection, table: Table, batch_rows: int) -> Iterator[list[dict[str, Any]]]:
    """The table's rows in primary-key order, in batches bounded by rows and bytes."""
    statement = select(table).order_by(*table.primary_key)
    result = reader.execution_options(yield_per=batch_rows).execute(statement)
    batch: list[dict[str, Any]] = []
    size = 0
    for row in result.mappings():
        batch.append(dict(row))
        size += sum(len(value) for value in row.values() if isinstance(value, bytes))
        if len(batch) >= batch_rows or size >= BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


# --- id sequences ---------------------------------------------------------------------


def _serial_column(table: Table) -> str | None:
    """The table's generated integer id column, if it has one."""
    columns = list(table.primary_key.columns)
    if len(columns) != 1 or columns[0] is not table.autoincrement_column:
        return None
    return columns[0].name if isinstance(columns[0].type, Integer) else None


def _high_water(connection: Connection, table: Table, column: str) -> int | None:
    """The highest id the database has handed out for the table (it may exceed the
    highest id present: events are pruned, and their ids must never come back)."""
    found = connection.execute(select(func.max(table.c[column]))).scalar()
    issued = _sequence_position(connection, table.name, column)
    values = [int(v) for v in (found, issued) if v is not None]
    return max(values) if values else None


def _sequence_position(connection: Connection, table: str, column: str) -> int | None:
    if connection.dialect.name == "postgresql":
        sequence = connection.execute(
            text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table, "c": column}
        ).scalar()
        if sequence is None:
            return None
        row = connection.execute(text(f"SELECT last_value, is_called FROM {sequence}")).one()
        return int(row.last_value) if row.is_called else int(row.last_value) - 1
    if connection.dialect.name == "sqlite":
        has_sequences = connection.execute(
            text("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'")
        ).first()
        if has_sequences is None:
            return None
        value = connection.execute(
            text("SELECT seq FROM sqlite_sequence WHERE name = :t"), {"t": table}
        ).scalar()
        return int(value) if value is not None else None
    return None


def _continue_ids(reader: Connection, writer: Connection, table: Table) -> None:
    """Make the target hand out ids after the source's: the copied rows kept theirs."""
    column = _serial_column(table)
    if column is None:
        return
    high = _high_water(reader, table, column)
    if high is None:
        return
    if writer.dialect.name == "postgresql":
        sequence = writer.execute(
            text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table.name, "c": column}
        ).scalar()
        if sequence is not None:
            # setval(seq, n, false): the next id is n (so the first id can be 1 or 0+1).
            writer.execute(
                text("SELECT setval(CAST(:s AS regclass), :n, false)"),
                {"s": sequence, "n": max(high + 1, 1)},
            )
    elif writer.dialect.name == "sqlite" and table.kwargs.get("sqlite_autoincrement"):
        # Explicit ids already moved sqlite_sequence to the highest copied; this carries
        # the source's position when ids above it were handed out and deleted.
        updated = writer.execute(
            text("UPDATE sqlite_sequence SET seq = :n WHERE name = :t AND seq < :n"),
            {"n": high, "t": table.name},
        )
        if updated.rowcount == 0 and _sequence_position(writer, table.name, column) is None:
            writer.execute(
                text("INSERT INTO sqlite_sequence (name, seq) VALUES (:t, :n)"),
                {"t": table.name, "n": high},
            )


# --- verification ---------------------------------------------------------------------


def table_digest(connection: Connection, table: Table) -> tuple[int, str]:
    """Row count and a SHA-256 over the table's rows in key order, each value read
    through the models' types and written in one canonical form, so SQLite and
    PostgreSQL holding the same data give the same digest."""
    digest = hashlib.sha256()
    rows = 0
    statement = select(table).order_by(*table.primary_key)
    for row in connection.execution_options(yield_per=BATCH_ROWS).execute(statement):
        rows += 1
        _digest_row(digest, row)
    return rows, digest.hexdigest()


def _digest_row(digest: Any, values: Iterable[Any]) -> None:
    digest.update(b"\x1e".join(_canonical(value) for value in values))
    digest.update(b"\n")


def _canonical(value: Any) -> bytes:
    if value is None:
        return b"\x00"
    if isinstance(value, bytes):
        return hashlib.sha256(value).digest()
    if isinstance(value, bool):
        return b"T" if value else b"F"
    if isinstance(value, float):
        return b"nan" if math.isnan(value) else repr(value).encode()
    if isinstance(value, datetime):
        return value.isoformat().encode()
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
    return repr(value).encode()


def digests(engine: Engine) -> dict[str, tuple[int, str]]:
    """`table_digest` of every table, in one snapshot."""
    with _snapshot(engine) as connection:
        return {table.name: table_digest(connection, table) for table in tables()}


def _verify(target: Engine, report: CopyReport) -> None:
    """The target, read back, holds what was read from the source's snapshot."""
    after = digests(target)
    for done in report.tables:
        if after[done.name] != (done.rows, done.digest):
            raise CopyError(
                f"table {done.name!r} differs after the copy ({done.rows} rows read, "
                f"{after[done.name][0]} in the target): drop the target and copy again"
            )
