"""Engine and sessions: one code path for SQLite and PostgreSQL, chosen by URL."""

from __future__ import annotations

import queue
import threading
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from service import events
from service.settings import Settings

# Execution option a session sets when it will write: on SQLite the transaction then
# starts with BEGIN IMMEDIATE, taking the write lock up front. A deferred transaction
# that upgrades to a writer later can fail at once with SQLITE_BUSY (the busy timeout
# does not apply to that upgrade), so every writer asks for the lock first.
WRITE_OPTION = "momentum_write"
T = TypeVar("T")

# The hot write path (ingest) queues its SQLite writers on a lock of the process before
# asking SQLite for its write lock: SQLite's busy handler polls with sleeps of up to
# 100 ms, so request threads contending through it spent most of their time asleep
# (bench/load.py, 8 writers: 75 requests/s before, 144 after). Only transactions that
# run start to finish on one thread may queue: a FastAPI dependency's transaction hops
# between pool threads, and a holder waiting for a free thread while every thread waits
# for the lock would stall them all. Other writers, and other processes, meet SQLite's
# busy timeout as before. A plain Lock, as the holder may not be the thread releasing.
_SQLITE_WRITERS: weakref.WeakKeyDictionary[Engine, _WriterQueue] = weakref.WeakKeyDictionary()


class _WriterQueue:
    def __init__(self, timeout_s: float) -> None:
        self.lock = threading.Lock()
        self.timeout_s = timeout_s

    def __enter__(self) -> None:
        if not self.lock.acquire(timeout=self.timeout_s):
            # What SQLite itself raises past its busy timeout; answered 503 (errors.py).
            raise OperationalError("waiting for the write lock", None, TimeoutError())

    def __exit__(self, *exc: object) -> None:
        self.lock.release()


def make_engine(settings: Settings) -> Engine:
    url = make_url(settings.sqlalchemy_url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(settings, url.database)
    return create_engine(
        url,
        pool_size=settings.pool_size,
        max_overflow=settings.pool_max_overflow,
        pool_timeout=settings.pool_timeout_s,
        pool_pre_ping=True,
    )


def _sqlite_engine(settings: Settings, database: str | None) -> Engine:
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        settings.sqlalchemy_url,
        pool_size=settings.pool_size,
        max_overflow=settings.pool_max_overflow,
        pool_timeout=settings.pool_timeout_s,
        connect_args={"check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from pysqlite (SQLAlchemy's documented workaround),
        # so BEGIN is emitted by the "begin" hook below and DDL stays transactional.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={settings.sqlite_synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={settings.sqlite_busy_timeout_ms}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        writing = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")

    _SQLITE_WRITERS[engine] = _WriterQueue(settings.sqlite_busy_timeout_ms / 1000)
    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions that record an event for each change they commit (service/events.py)."""
    factory = sessionmaker(engine, expire_on_commit=False, autoflush=False)
    events.install(factory)
    return factory


@contextmanager
def transaction(
    factory: sessionmaker[Session], *, write: bool, queue: bool = False
) -> Iterator[Session]:
    """One transaction: commit on success, roll back on error. `queue`: wait for the
    process's SQLite write turn first (only for a transaction run on one thread)."""
    with factory() as session, _writer_turn(session, write and queue):
        if write:
            session.connection(execution_options={WRITE_OPTION: True})
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def _writer_turn(session: Session, queue: bool) -> AbstractContextManager[Any]:
    bind = session.get_bind()
    lock = _SQLITE_WRITERS.get(bind) if queue and isinstance(bind, Engine) else None
    return lock if lock is not None else nullcontext()


WRITER_THREAD = "momentum-group-commit"


class GroupCommit:
    """One writer thread that runs queued units of work together in one transaction
    (SQLite ingest: its single writer is the bottleneck either way).

    Under bench/load.py's 32 writers each request thread held the SQLite write lock for
    its whole transaction while taking turns for the GIL with every other thread at
    each of its ~8 driver calls, so the lock's queue, not the work, made the latency.
    Here the request threads only wait for a future; the writer takes the queued units
    (up to `max_units`) into one transaction and one commit. Every unit's future is set
    only after that commit: acknowledged still means committed. A unit that raises
    fails its group, and then each unit of the group is run again in a transaction of
    its own, so only the failing one fails and it writes nothing.
    """

    def __init__(
        self, factory: sessionmaker[Session], *, max_units: int = 64, idle_s: float = 2.0
    ) -> None:
        self._factory = factory
        self._max_units = max_units
        self._idle_s = idle_s
        # None is close()'s wake-up call: the thread may be waiting for a unit.
        self._queue: queue.SimpleQueue[_Unit[Any] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False

    def submit(self, work: Callable[[Session], T]) -> Future[T]:
        unit: _Unit[T] = _Unit(work, Future())
        with self._lock:
            if self._closed:
                raise RuntimeError("the group-commit writer is closed (the app is stopping)")
            self._queue.put(unit)
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name=WRITER_THREAD, daemon=True)
                self._thread.start()
        return unit.future

    def close(self) -> None:
        """Run what is queued, then end the writer thread and wait for it: at the app's
        shutdown, before its engine is disposed of under the thread's feet."""
        with self._lock:
            self._closed = True
            thread = self._thread
        self._queue.put(None)
        if thread is not None:
            thread.join()

    def _serve(self) -> None:
        while (units := self._take()) is not None:
            if units and not self._run(units) and len(units) > 1:
                for unit in units:
                    self._run([unit])

    def _take(self) -> list[_Unit[Any]] | None:
        """The next group of units (perhaps none); None once the thread should end: idle
        for `idle_s` (a later submit starts another), or closed with nothing queued."""
        try:  # once closed, what is queued is all there will be: no waiting
            taken = [self._queue.get(block=not self._closed, timeout=self._idle_s)]
        except queue.Empty:
            taken = []
        while len(taken) < self._max_units:
            try:
                taken.append(self._queue.get_nowait())
            except queue.Empty:
                break
        units = [unit for unit in taken if unit is not None]
        if units:
            return units
        with self._lock:  # exit only with nothing queued, or submit restarts us
            if self._queue.empty():
                self._thread = None
                return None
        return []

    def _run(self, units: list[_Unit[Any]]) -> bool:
        """Run units in one transaction; False (futures untouched) if it failed and
        should be retried unit by unit."""
        try:
            with transaction(self._factory, write=True, queue=True) as session:
                results = [unit.work(session) for unit in units]
        except BaseException as exc:
            if len(units) > 1:
                return False
            units[0].future.set_exception(exc)
            return True
        for unit, result in zip(units, results, strict=True):
            unit.future.set_result(result)
        return True


@dataclass
class _Unit(Generic[T]):
    work: Callable[[Session], T]
    future: Future[T]
