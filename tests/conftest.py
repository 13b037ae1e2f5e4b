"""Fixtures: migrated SQLite files and a real PostgreSQL server, one fresh database per test."""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from service import Settings, create_app
from service.migrate import upgrade
from tests.support import scratch_postgres_database, throwaway_postgres

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
_database_numbers = itertools.count()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """MOMENTUM_TEST_POSTGRES_URL (a server URL whose user may create databases) or a
    throwaway cluster started here."""
    given = os.environ.get("MOMENTUM_TEST_POSTGRES_URL")
    if given:
        yield given.rstrip("/")
        return
    with throwaway_postgres() as url:
        yield url


def _admin(server_url: str):  # type: ignore[no-untyped-def]
    return create_engine(f"{server_url}/postgres", isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def postgres_template(postgres_server: str) -> Iterator[str]:
    """A database migrated once; each test copies it (CREATE DATABASE … TEMPLATE)."""
    name = f"momentum_template_{os.getpid()}"
    admin = _admin(postgres_server)
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        connection.execute(text(f"CREATE DATABASE {name}"))
    upgrade(Settings(database_url=f"{postgres_server}/{name}"))
    yield name
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "momentum.sqlite3"
    upgrade(Settings(database_url=f"sqlite:///{path}"))
    return path


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A freshly migrated database of the test's backend, dropped afterwards."""
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "momentum.sqlite3"
        shutil.copyfile(template, target)
        yield f"sqlite:///{target}"
        return
    server: str = request.getfixturevalue("postgres_server")
    template_name: str = request.getfixturevalue("postgres_template")
    with scratch_postgres_database(server, "momentum_test", template_name) as url:
        yield url


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    # Live diagnosis off: in-process tests compare whole databases before and after a
    # request, and the background analysis could write findings in between. Its own
    # tests (test_diagnosis_api.py) turn it on against a real server.
    return Settings(database_url=database_url, data_dir=tmp_path, diagnosis_interval_s=0)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def engine(settings: Settings):  # type: ignore[no-untyped-def]
    """A separate engine on the test's database, to check what was really stored."""
    from service.db import make_engine

    engine = make_engine(settings)
    yield engine
    engine.dispose()
