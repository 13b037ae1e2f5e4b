"""GroupCommit: queued units share a transaction; a failing unit fails alone."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from service.db import GroupCommit, make_engine, make_sessionmaker
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
