"""The scale-out shape, with real processes on loopback: one PostgreSQL, two `momentum
serve` replicas on their own ports, six `momentum worker` processes split between them.

A 24-job sweep of tiny CPU configs completes; each job was claimed once (attempts 1, no
lease lapsed) by a worker of the replica it polled; every run holds each logged step
exactly once; and an event stream open on replica A sees the points of the runs that
replica B's workers wrote. Everything is stopped in finalisers; bounded by deadlines.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine

from tests.factories import stored_point_count
from tests.sse import Received, parse
from tests.support import ServerProcess, wait_until
from tests.test_worker_e2e import Workers

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.parametrize(
        "backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
    ),
]

API = "/api/v1"
STEPS, LOG_EVERY, EVAL_EVERY = 30, 2, 10
# NumPy jobs: the same worker protocol, reporter and step schedule as torch jobs, without
# six processes each importing torch (~3 s of CPU apiece on this 2-core box).
FRAMEWORK = "numpy"
BASE = {
    "framework": FRAMEWORK,
    "dataset": "ravine",
    "model": "linear",
    "steps": STEPS,
    "log_every": LOG_EVERY,
    "eval_every": EVAL_EVERY,
    "device": "cpu",
    "stop_on_divergence": False,
}
# 4 x 3 x 2 = 24 jobs.
GRID = {"momentum": [0.0, 0.5, 0.9, 0.99], "lr": [0.01, 0.02, 0.05], "seed": [0, 1]}
WORKERS_PER_REPLICA = 3


def logged_steps() -> list[int]:
    """The steps StepSchedule logs `loss` at: every LOG_EVERY-th, and the last."""
    return sorted({s for s in range(STEPS) if s % LOG_EVERY == 0} | {STEPS - 1})


def evaluated_steps() -> list[int]:
    return sorted({s for s in range(STEPS) if s % EVAL_EVERY == 0} | {STEPS - 1})


@pytest.fixture
def replicas(database_url: str) -> Iterator[tuple[str, str]]:
    env = {
        "MOMENTUM_DATABASE_URL": database_url,
        "MOMENTUM_EVENT_POLL_INTERVAL_S": "0.2",
        # One stream for the whole test (the default 25 s would end it and expect a resume).
        "MOMENTUM_EVENT_STREAM_MAX_S": "300",
    }
    with ServerProcess(env) as a, ServerProcess(env) as b, ThreadPoolExecutor(2) as starting:
        url_a, url_b = starting.submit(a.start), starting.submit(b.start)
        yield url_a.result(), url_b.result()


@pytest.fixture
def pool(replicas: tuple[str, str], tmp_path: Path) -> Iterator[Workers]:
    started = Workers(replicas[0], tmp_path)  # each worker is started with its replica's URL
    try:
        yield started
    finally:
        started.stop_all()


def history(http: httpx.Client, run_id: int, key: str) -> list[int]:
    response = http.get(f"{API}/runs/{run_id}/metrics/{key}")
    assert response.status_code == 200, response.text
    return list(response.json()["steps"])


def all_jobs(http: httpx.Client, sweep_id: int) -> list[dict[str, Any]]:
    response = http.get(f"{API}/jobs", params={"sweep_id": sweep_id, "limit": 1000})
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


class StreamReader:
    """GET /events on one replica, read on a thread from the start of the test."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.seen: list[Received] = []
        self.http: httpx.Client
        self.opened = threading.Event()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)

    def _read(self) -> None:
        # As a browser's EventSource does: when the stream ends or goes quiet, reconnect
        # with Last-Event-ID, missing nothing. A short read timeout lets the thread stop.
        while not self.stopping.is_set():
            last = self.seen[-1].id if self.seen else None
            headers = {"Last-Event-ID": str(last)} if last is not None else {}
            try:
                with self.http.stream("GET", f"{API}/events", headers=headers) as response:
                    assert response.status_code == 200
                    self.opened.set()
                    for event in parse(response.iter_lines()):
                        self.seen.append(event)
            except httpx.ReadTimeout:
                continue

    def __enter__(self) -> StreamReader:
        self.http = httpx.Client(base_url=self.url, timeout=httpx.Timeout(5.0, read=1.0))
        self.thread.start()
        assert self.opened.wait(10), "the event stream did not open"
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.thread.join(timeout=10)
        self.http.close()

    def last_steps(self) -> dict[int, int]:
        last: dict[int, int] = {}
        for event in list(self.seen):
            if event.kind == "points":
                run_id = event.data["run_id"]
                last[run_id] = max(last.get(run_id, -1), event.data["last_step"])
        return last


def registered(http: httpx.Client) -> set[str]:
    return {worker["id"] for worker in http.get(f"{API}/workers").json()["items"]}


def wait_gently(condition: Callable[[], bool], timeout: float, pool: Workers) -> None:
    """Poll every 0.25 s: two cores run six workers, two replicas and PostgreSQL here."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s\n{pool.log_tails()}")
        time.sleep(0.25)


def test_two_replicas_six_workers_run_a_sweep_once_and_share_events(
    replicas: tuple[str, str], pool: Workers, database_url: str
) -> None:
    url_a, url_b = replicas
    with (
        httpx.Client(base_url=url_a, timeout=30) as http_a,
        httpx.Client(base_url=url_b, timeout=30) as http_b,
        StreamReader(url_a) as stream_a,
    ):
        for index in range(WORKERS_PER_REPLICA):
            pool.start(f"a-{index}", url_a, frameworks=FRAMEWORK)
            pool.start(f"b-{index}", url_b, frameworks=FRAMEWORK)
        # The sweep goes in once all six poll (a claim attempt registers a worker), so
        # both replicas' workers share it rather than whoever started first.
        wait_gently(lambda: registered(http_a) >= set(pool.processes), 60, pool)

        body = {"name": "topology", "base": BASE, "grid": GRID}
        created = http_b.post(f"{API}/sweeps", json=body)
        assert created.status_code == 201, created.text
        sweep = created.json()
        assert len(sweep["job_ids"]) == 24

        started = time.monotonic()
        deadline = started + 120
        while not all(job["status"] == "succeeded" for job in all_jobs(http_a, sweep["id"])):
            if time.monotonic() > deadline:
                jobs = all_jobs(http_a, sweep["id"])
                states = [(job["id"], job["status"], job["error"]) for job in jobs]
                raise AssertionError(f"sweep unfinished: {states}\n{pool.log_tails()}")
            time.sleep(0.5)
        elapsed = time.monotonic() - started
        jobs = all_jobs(http_b, sweep["id"])

        # Claimed once each (the jobs' counters and the workers' own logs agree), by a
        # worker of this pool; nobody's lease lapsed.
        assert sorted(job["id"] for job in jobs) == sorted(sweep["job_ids"])
        assert [job["attempts"] for job in jobs] == [1] * 24, jobs
        assert [job["lease_lapses"] for job in jobs] == [0] * 24, jobs
        owners = {job["id"]: job["lease_owner"] for job in jobs}
        assert set(owners.values()) <= set(pool.processes), owners
        claims = Counter(int(match) for match in re.findall(r"job (\d+): claimed", pool.all_logs()))
        assert claims == dict.fromkeys(sweep["job_ids"], 1), claims
        run_ids = [job["run_id"] for job in jobs]
        assert len(set(run_ids)) == 24

        # Every run's points, once each, read through either replica alike.
        served_points = 0
        for job in jobs:
            run_id = job["run_id"]
            keys = http_a.get(f"{API}/runs/{run_id}/metrics").json()["items"]
            counts = {item["key"]: item["count"] for item in keys}
            served_points += sum(counts.values())
            assert counts["loss"] == len(logged_steps()), (run_id, counts)
            assert counts["val_loss"] == len(evaluated_steps()), (run_id, counts)
            for key, count in counts.items():
                steps = history(http_a, run_id, key)
                assert steps == sorted(set(steps)) and len(steps) == count, (run_id, key)
            assert history(http_a, run_id, "loss") == logged_steps()
            assert history(http_b, run_id, "loss") == logged_steps()
            assert history(http_a, run_id, "val_loss") == evaluated_steps()

        # Storage holds exactly those points (rows, blocks and chunks), no stray copies.
        engine = create_engine(database_url)
        try:
            assert stored_point_count(engine) == served_points
        finally:
            engine.dispose()

        # Both replicas' workers took part; A's stream saw the points written through B.
        through_b = {job["run_id"] for job in jobs if owners[job["id"]].startswith("b-")}
        through_a = {job["run_id"] for job in jobs if owners[job["id"]].startswith("a-")}
        assert through_a and through_b, owners

        def saw_b_runs_end() -> bool:
            last = stream_a.last_steps()
            return all(last.get(run_id) == STEPS - 1 for run_id in through_b)

        wait_until(saw_b_runs_end, timeout=15)  # cheap: reads the thread's list
    split = dict(sorted(Counter(owners.values()).items()))
    print(f"24 jobs on 2 replicas x {WORKERS_PER_REPLICA} workers: {elapsed:.1f} s, {split}")
