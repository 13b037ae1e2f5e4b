"""The database a benchmark measures, chosen by the same two flags in every script."""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support import throwaway_postgres  # noqa: E402


def add_database_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database-url", help="PostgreSQL URL (an empty database); default SQLite")
    parser.add_argument(
        "--throwaway-postgres",
        action="store_true",
        help="start a private PostgreSQL cluster on a free loopback port and measure on it",
    )


@contextmanager
def benchmark_database(args: argparse.Namespace, prefix: str) -> Iterator[tuple[str, Path]]:
    """(database URL, fresh data dir): a private cluster, the URL given, or a new SQLite file."""
    data_dir = Path(tempfile.mkdtemp(prefix=prefix))
    if args.throwaway_postgres:
        with throwaway_postgres() as server:
            yield f"{server}/postgres", data_dir
    else:
        yield args.database_url or f"sqlite:///{data_dir / 'momentum.sqlite3'}", data_dir
