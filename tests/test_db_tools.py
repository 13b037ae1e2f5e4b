"""`momentum db backup` and `momentum db copy`: a live SQLite backup holds every
acknowledged point; a copy from SQLite to PostgreSQL (and back) loses nothing, keeps ids
and id sequences, and the service started on the copy serves the same history."""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, delete, func, insert, select, text

from momentum.cli import main
from service import Settings, create_app
from service.backup import backup
from service.dbcopy import digests, tables
from service.models import Event, Point, Series
from tests.factories import log_points, make_run, points
from tests.jobs_support import API, claim, submit
from tests.support import live_server, scratch_postgres_database

# --- a populated installation ---------------------------------------------------------

LONG = 10_000  # > two sealed blocks of BLOCK_STEPS
ODD_VALUES = {7: "NaN", 8: "Infinity", 9: "-Infinity", 5000: "NaN", 9999: "Infinity"}
LEGACY_STEPS = 50


def populate(settings: Settings) -> None:
    """Runs with long series (NaN/±Inf among them), legacy point rows, a sweep, jobs
    (one claimed and completed: a worker, a lease), an MLflow experiment, events."""
    with TestClient(create_app(settings)) as client:
        first = make_run(client, name="long", tags={"team": "a"})
        loss = points("loss", range(LONG))
        for step, value in ODD_VALUES.items():
            loss[step]["value"] = value
        for start in range(0, LONG, 2500):
            log_points(client, first["id"], loss[start : start + 2500])
        log_points(client, first["id"], points("accuracy", range(0, LONG, 100), 0.5))
        second = make_run(client, name="short", params={"optimizer": "adam", "lr": 0.001})
        log_points(client, second["id"], points("loss", range(300)))
        legacy = make_run(client, name="legacy")
        sweep = client.post(
            f"{API}/sweeps",
            json={"name": "s", "base": {"steps": 5}, "grid": {"momentum": [0.0, 0.9]}},
        )
        assert sweep.status_code == 201, sweep.text
        submit(client)
        lease = claim(client, "worker-1")
        assert lease is not None
        done = client.post(
            f"{API}/jobs/{lease['job']['id']}/complete",
            json={"lease_token": lease["lease_token"], "summary": {"final_loss": 0.25}},
        )
        assert done.status_code == 200, done.text
        created = client.post("/api/2.0/mlflow/experiments/create", json={"name": "exp-a"})
        assert created.status_code == 200, created.text
    engine = create_engine(settings.sqlalchemy_url)
    with engine.begin() as connection:
        add_legacy_rows(connection, legacy["id"])
        # The newest event is pruned: its id must still never be handed out again.
        newest = connection.execute(select(func.max(Event.id))).scalar_one()
        connection.execute(delete(Event).where(Event.id == newest))
    engine.dispose()


def add_legacy_rows(connection: Any, run_id: int) -> None:
    """A series whose points are all rows in `points`, as databases before 0004 kept them."""
    values = [None if step == 3 else math.inf if step == 4 else step / 10 for step in range(50)]
    series_id = connection.execute(
        insert(Series).values(
            run_id=run_id,
            key="old",
            sealed_until=0,
            last_step=LEGACY_STEPS - 1,
            last_value=values[-1],
        )
    ).inserted_primary_key[0]
    rows = [
        {"series_id": series_id, "step": step, "value": value, "wall_time": 1e9 + step}
        for step, value in enumerate(values)
    ]
    connection.execute(insert(Point), rows)


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    database = tmp_path / "source.sqlite3"
    shutil.copyfile(sqlite_template, database)
    return f"sqlite:///{database}"


@pytest.fixture
def source(sqlite_url: str, tmp_path: Path) -> str:
    populate(Settings(database_url=sqlite_url, data_dir=tmp_path))
    return sqlite_url


@pytest.fixture
def empty_postgres(postgres_server: str) -> Iterator[str]:
    """A new database with no tables at all: the copy migrates it."""
    with scratch_postgres_database(postgres_server, "momentum_copy") as url:
        yield url


# --- reading an installation back -----------------------------------------------------


def row_counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return {
                table.name: connection.execute(
                    text(f"SELECT count(*) FROM {table.name}")
                ).scalar_one()
                for table in tables()
            }
    finally:
        engine.dispose()


def served(http: Any) -> dict[str, Any]:
    """What the service answers about everything in it: runs, each series' full history
    (hashed), jobs, sweeps, workers and MLflow experiments."""
    runs = http.get(f"{API}/runs", params={"limit": 1000}).json()["items"]
    histories: dict[str, str] = {}
    for run in runs:
        for item in http.get(f"{API}/runs/{run['id']}/metrics").json()["items"]:
            series = http.get(f"{API}/runs/{run['id']}/metrics/{item['key']}").json()
            assert len(series["steps"]) == len(set(series["steps"])) == item["count"]
            canonical = repr((series["steps"], series["values"], series["wall_times"]))
            histories[f"{run['id']}/{item['key']}"] = hashlib.sha256(canonical.encode()).hexdigest()
    experiments = http.post("/api/2.0/mlflow/experiments/search", json={"max_results": 100}).json()
    return {
        "runs": runs,
        "histories": histories,
        "jobs": http.get(f"{API}/jobs", params={"limit": 1000}).json(),
        "sweeps": http.get(f"{API}/sweeps").json(),
        "workers": http.get(f"{API}/workers").json(),
        "experiments": experiments,
    }


def served_by_app(url: str, data_dir: Path) -> dict[str, Any]:
    with TestClient(create_app(Settings(database_url=url, data_dir=data_dir))) as client:
        return served(client)


def copy(source: str, target: str) -> Any:
    return CliRunner().invoke(main, ["db", "copy", "--from", source, "--to", target])


# --- db copy ------------------------------------------------------------------------------


@pytest.mark.postgres
def test_copy_sqlite_to_postgres_keeps_every_row_and_the_service_serves_the_same_history(
    source: str, empty_postgres: str, tmp_path: Path
) -> None:
    before = served_by_app(source, tmp_path)
    assert before["histories"]  # the fixture really holds data
    result = copy(source, empty_postgres)
    assert result.exit_code == 0, result.output
    assert "counts and digests match" in result.output

    counts = row_counts(source)
    assert row_counts(empty_postgres) == counts
    for name in ("runs", "series", "points", "jobs", "sweeps", "workers", "events"):
        assert counts[name] > 0, name
    assert counts["point_blocks"] + counts.get("point_chunks", 0) > 0
    assert counts["experiments"] == 2 and counts["points"] == LEGACY_STEPS
    source_engine, target_engine = create_engine(source), create_engine(empty_postgres)
    try:
        assert digests(target_engine) == digests(source_engine)
    finally:
        source_engine.dispose()
        target_engine.dispose()

    # The real service on the copy: the same answers, NaN/±Inf and legacy rows included.
    with live_server({"MOMENTUM_DATABASE_URL": empty_postgres}) as url:
        with httpx.Client(base_url=url, timeout=30) as http:
            after = served(http)
            assert after == before
            long_run = next(run for run in after["runs"] if run["name"] == "long")
            loss = http.get(f"{API}/runs/{long_run['id']}/metrics/loss").json()
            assert [loss["values"][step] for step in ODD_VALUES] == list(ODD_VALUES.values())
            # Ids continue after the copied ones (sequences reset), pruned event ids too.
            max_run = max(run["id"] for run in after["runs"])
            assert make_run_over_http(http) == max_run + 1
            assert http.post(f"{API}/jobs", json={"config": {"steps": 5}}).status_code == 201
    assert newest_event_id(empty_postgres) > events_issued(source)


def events_issued(sqlite_url: str) -> int:
    """The highest event id SQLite has handed out (pruned ones included)."""
    with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as connection:
        row = connection.execute("SELECT seq FROM sqlite_sequence WHERE name='events'").fetchone()
    return int(row[0])


def newest_event_id(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(select(func.max(Event.id))).scalar_one())
    finally:
        engine.dispose()


def make_run_over_http(http: httpx.Client) -> int:
    response = http.post(f"{API}/runs", json={"name": "after the copy"})
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


@pytest.mark.postgres
def test_copy_back_from_postgres_to_sqlite_is_identical(
    source: str, empty_postgres: str, tmp_path: Path
) -> None:
    assert copy(source, empty_postgres).exit_code == 0
    back = f"sqlite:///{tmp_path / 'back.sqlite3'}"
    result = copy(empty_postgres, back)
    assert result.exit_code == 0, result.output
    engines = [create_engine(url) for url in (source, back)]
    try:
        assert digests(engines[0]) == digests(engines[1])
    finally:
        for engine in engines:
            engine.dispose()


def test_copy_takes_a_migrated_empty_target_and_refuses_one_that_holds_data(
    source: str, sqlite_template: Path, tmp_path: Path
) -> None:
    # Migrated already: only the rows the migrations seed (experiment 0) are there.
    shutil.copyfile(sqlite_template, tmp_path / "target.sqlite3")
    target = f"sqlite:///{tmp_path / 'target.sqlite3'}"
    assert copy(source, target).exit_code == 0
    counts = row_counts(target)
    again = copy(source, target)
    assert again.exit_code == 1
    assert "not empty (rows in " in again.output and "runs, " in again.output
    assert row_counts(target) == counts


def test_copy_refuses_the_same_database_and_an_outdated_source(source: str, tmp_path: Path) -> None:
    same = copy(source, source)
    assert same.exit_code == 1 and "same database" in same.output
    old = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    from service.migrate import upgrade

    upgrade(Settings(database_url=old), "0005")
    outdated = copy(old, f"sqlite:///{tmp_path / 'new.sqlite3'}")
    assert outdated.exit_code == 1
    assert "revision 0005" in outdated.output and "momentum db upgrade" in outdated.output


def test_copy_sqlite_to_sqlite_continues_event_ids_after_pruned_ones(
    source: str, tmp_path: Path
) -> None:
    target = f"sqlite:///{tmp_path / 'target.sqlite3'}"
    assert copy(source, target).exit_code == 0
    assert events_issued(target) == events_issued(source)
    with TestClient(create_app(Settings(database_url=target, data_dir=tmp_path))) as client:
        make_run(client, name="new")
    assert newest_event_id(target) > events_issued(source)


# --- db backup ----------------------------------------------------------------------------


class Ingest:
    """Batches of 1,000 consecutive steps posted to a few runs until stopped, a reporter's
    pace apart (flat out, it would starve the backup process on two cores); records the
    steps each run had acknowledged (committed) by any moment."""

    BATCH = 1000
    PAUSE_S = 0.02

    def __init__(self, url: str, run_ids: list[int]) -> None:
        self.url, self.run_ids = url, run_ids
        self.acked = dict.fromkeys(run_ids, 0)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._post)
        self.error: BaseException | None = None

    def _post(self) -> None:
        try:
            with httpx.Client(base_url=self.url, timeout=30) as http:
                while not self.stopping.is_set():
                    for run_id in self.run_ids:
                        start = self.acked[run_id]
                        body = {"points": points("loss", range(start, start + self.BATCH))}
                        response = http.post(f"{API}/runs/{run_id}/metrics", json=body)
                        assert response.status_code == 200, response.text
                        self.acked[run_id] = start + self.BATCH
                    self.stopping.wait(self.PAUSE_S)
        except BaseException as exc:
            self.error = exc

    def __enter__(self) -> Ingest:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.thread.join(timeout=30)


def test_backup_while_the_service_ingests_holds_every_acknowledged_point(
    sqlite_url: str, tmp_path: Path
) -> None:
    env = {"MOMENTUM_DATABASE_URL": sqlite_url}
    with live_server(env) as url:
        run_ids = [
            httpx.post(f"{url}{API}/runs", json={"name": f"r{i}"}).json()["id"] for i in range(2)
        ]
        backups: list[tuple[Path, dict[int, int], dict[int, int]]] = []
        with Ingest(url, run_ids) as ingest:
            for number in range(3):
                while min(ingest.acked.values()) < (number + 1) * 3 * Ingest.BATCH:
                    assert ingest.error is None, ingest.error
                    ingest.thread.join(0.05)
                path = tmp_path / f"backup-{number}.sqlite3"
                acked_before = dict(ingest.acked)
                if number == 0:  # the real command once; then in process, quicker
                    done = subprocess.run(
                        [sys.executable, "-m", "momentum.cli", "db", "backup", str(path)],
                        env={**os.environ, **env},
                        capture_output=True,
                        text=True,
                        timeout=60,
                    )
                    assert done.returncode == 0, done.stderr
                    assert f"backed up to {path}" in done.stdout
                else:
                    backup(Settings(database_url=sqlite_url), path)
                backups.append((path, acked_before, dict(ingest.acked)))
        assert ingest.error is None, ingest.error

    for path, acked_before, acked_after in backups:
        with sqlite3.connect(path) as connection:
            assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert connection.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        # Restore = put the file where the service looks; it serves every acked point.
        restored = tmp_path / f"restored-{path.stem}" / "momentum.sqlite3"
        restored.parent.mkdir()
        shutil.copyfile(path, restored)
        settings = Settings(database_url=f"sqlite:///{restored}", data_dir=restored.parent)
        with TestClient(create_app(settings)) as client:
            assert client.get("/readyz").status_code == 200
            for run_id in run_ids:
                steps = client.get(f"{API}/runs/{run_id}/metrics/loss").json()["steps"]
                # A consistent snapshot: whole batches, no gaps, at least what was acked.
                assert steps == list(range(len(steps)))
                assert acked_before[run_id] <= len(steps) <= acked_after[run_id]
                assert len(steps) % Ingest.BATCH == 0


def test_backup_refuses_postgres_and_points_to_pg_dump() -> None:
    env = {"MOMENTUM_DATABASE_URL": "postgresql+psycopg://user@127.0.0.1:1/momentum"}
    result = CliRunner().invoke(main, ["db", "backup", "x.dump"], env=env)
    assert result.exit_code == 1
    assert "pg_dump" in result.output and "pg_restore" in result.output


def test_backup_never_overwrites_a_file(source: str, tmp_path: Path) -> None:
    existing = tmp_path / "existing.sqlite3"
    existing.write_bytes(b"keep me")
    result = CliRunner().invoke(
        main, ["db", "backup", str(existing)], env={"MOMENTUM_DATABASE_URL": source}
    )
    assert result.exit_code == 1 and "never overwrites" in result.output
    assert existing.read_bytes() == b"keep me"
