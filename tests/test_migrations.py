"""The schema comes from Alembic alone, and it matches the models on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi.testclient import TestClient
from sqlalchemy import inspect

from service import create_app
from service.db import make_engine
from service.migrate import downgrade, head_revision, upgrade
from service.models import Base
from service.settings import Settings
from tests.jobs_support import API, TINY


def test_migrated_schema_equals_models(settings: Settings) -> None:
    engine = make_engine(settings)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
            assert context.get_current_revision() == head_revision()
    finally:
        engine.dispose()


def test_points_table_is_clustered_on_series_and_step(settings: Settings) -> None:
    engine = make_engine(settings)
    try:
        primary_key = inspect(engine).get_pk_constraint("points")
        assert primary_key["constrained_columns"] == ["series_id", "step"]
        if engine.dialect.name == "sqlite":
            with engine.connect() as connection:
                sql = connection.exec_driver_sql(
                    "SELECT sql FROM sqlite_master WHERE name = 'points'"
                ).scalar_one()
            assert "WITHOUT ROWID" in sql.upper()
    finally:
        engine.dispose()


def test_sqlite_connections_use_wal_foreign_keys_and_busy_timeout(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path, sqlite_busy_timeout_ms=1234)
    engine = make_engine(settings)
    try:
        with engine.connect() as connection:
            pragma = connection.exec_driver_sql
            assert pragma("PRAGMA journal_mode").scalar_one() == "wal"
            assert pragma("PRAGMA foreign_keys").scalar_one() == 1
            assert pragma("PRAGMA busy_timeout").scalar_one() == 1234
            assert pragma("PRAGMA synchronous").scalar_one() == 1  # NORMAL
    finally:
        engine.dispose()
    assert (tmp_path / "momentum.sqlite3").exists()


def test_dropping_sweep_status_keeps_every_sweeps_jobs(settings: Settings) -> None:
    """Migration 0009 alters `sweeps` in place: a copy-and-move of the table (SQLite's
    batch mode) would cascade its deletion to every job of every sweep."""
    with TestClient(create_app(settings)) as client:
        grid = {"momentum": [0.0, 0.9]}
        created = client.post(f"{API}/sweeps", json={"name": "mu", "base": TINY, "grid": grid})
        assert created.status_code == 201, created.text
    engine = make_engine(settings)

    def jobs_and_sweep_columns() -> tuple[int, set[str]]:
        with engine.connect() as connection:
            jobs = connection.exec_driver_sql("SELECT count(*) FROM jobs").scalar_one()
            columns = {c["name"] for c in inspect(connection).get_columns("sweeps")}
        return jobs, columns

    try:
        downgrade(settings, "0008")
        jobs, columns = jobs_and_sweep_columns()
        assert jobs == 2 and "status" in columns
        upgrade(settings)
        jobs, columns = jobs_and_sweep_columns()
        assert jobs == 2 and "status" not in columns
    finally:
        engine.dispose()
