"""GroupCommit: queued units share a transaction; a failing unit fails alone."""

from __future__ import annotations

import threading

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from service import create_app
from service.db import WRITER_THREAD, GroupCommit, make_engine, make_sessionmaker
from service.deps import app_state
from service.settings import Settings

_INSERT = "INSERT INTO experiments (name, project, created_at) VALUES (:n, :n, '2026-01-01')"


def _insert(name: str) -> object:
    def work(session: Session) -> str:
        session.execute(text(_INSERT), {"n": name})
        return name

    return work


def _fail(session: Session) -> None:
    session.execute(text(_INSERT), {"n": "bad"})
    raise RuntimeError("this unit fails")


def _names(settings: Settings) -> set[str]:
    engine = make_engine(settings)
    try:
        with engine.connect() as connection:
            return set(connection.execute(text("SELECT name FROM experiments")).scalars())
    finally:
        engine.dispose()


def test_units_from_many_threads_all_commit_and_a_failing_one_writes_nothing(
    settings: Settings,
) -> None:
    engine = make_engine(settings)
    writer = GroupCommit(make_sessionmaker(engine), idle_s=0.05)
    futures, lock = [], threading.Lock()

    def client(number: int) -> None:
        for i in range(20):
            work = _fail if (number, i) == (3, 7) else _insert(f"unit-{number}-{i}")
            future = writer.submit(work)  # type: ignore[arg-type]
            with lock:
                futures.append(future)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    failed = [f for f in futures if f.exception(timeout=30) is not None]
    assert len(failed) == 1
    with pytest.raises(RuntimeError):
        failed[0].result()
    expected = {f"unit-{n}-{i}" for n in range(8) for i in range(20)} - {"unit-3-7"}
    assert {f.result() for f in futures if f not in failed} == expected
    assert _names(settings) - {"Default"} == expected  # 'bad' never committed
    engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_close_runs_what_is_queued_then_ends_the_thread(settings: Settings) -> None:
    _wait_for_idle_writers_to_end()
    engine = make_engine(settings)
    writer = GroupCommit(make_sessionmaker(engine), idle_s=60)  # idling would not end it
    futures = [writer.submit(_insert(f"queued-{i}")) for i in range(5)]
    writer.close()
    assert [future.result(timeout=0) for future in futures] == [f"queued-{i}" for i in range(5)]
    assert not _writer_threads()
    with pytest.raises(RuntimeError, match="closed"):
        writer.submit(_insert("too-late"))
    engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_apps_ingest_writer_is_built_by_its_lifespan_and_gone_after_it(
    settings: Settings,
) -> None:
    _wait_for_idle_writers_to_end()
    with TestClient(create_app(settings)) as http:
        assert app_state(http.app).ingest_writer is not None
        run_id = http.post("/api/v1/runs", json={"name": "r"}).json()["id"]
        points = {"points": [{"key": "loss", "step": 0, "value": 1.0}]}
        assert http.post(f"/api/v1/runs/{run_id}/metrics", json=points).status_code == 200
        assert _writer_threads()  # it idles 2 s before its thread ends by itself
    assert not _writer_threads()


def _writer_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == WRITER_THREAD]


def _wait_for_idle_writers_to_end() -> None:
    """Another test's writer ends by itself once idle (idle_s): not this test's concern."""
    for thread in _writer_threads():
        thread.join(timeout=10)
