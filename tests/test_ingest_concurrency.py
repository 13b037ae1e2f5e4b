"""Concurrent writers against a real server: every acknowledged point is stored once.

Ingest merges each batch into its series' blocks (read, merge, write back), so two
batches for one series racing each other would lose one of them without the write
lock (SQLite) or the series row lock (PostgreSQL). Writers here share one run, with
interleaved steps so that every batch lands in the same blocks as its rivals' batches,
and also write to runs of their own; two server processes make the race real on SQLite.
"""

from __future__ import annotations

import threading

import httpx
import pytest

from tests.support import live_server

pytestmark = pytest.mark.e2e

WRITERS = 16
BATCHES = 50
POINTS_PER_BATCH = 40
API = "/api/v1"


def _value(writer: int, step: int) -> float:
    return writer + step / 1e6


def _shared_batch(writer: int, batch: int) -> list[dict[str, object]]:
    """Steps writer, writer + 16, writer + 32, …: rivals fill the gaps of the same blocks."""
    first = batch * POINTS_PER_BATCH
    steps = [(first + i) * WRITERS + writer for i in range(POINTS_PER_BATCH)]
    return [{"key": "loss", "step": s, "value": _value(writer, s)} for s in steps]


def _own_batch(batch: int) -> list[dict[str, object]]:
    first = batch * POINTS_PER_BATCH
    return [
        {"key": "loss", "step": s, "value": float(s)}
        for s in range(first, first + POINTS_PER_BATCH)
    ]


def _write(
    url: str, writer: int, shared: int, own: int, acked: list[int], errors: list[str]
) -> None:
    with httpx.Client(base_url=url, timeout=60) as http:
        for batch in range(BATCHES):
            run_id, points = (shared, _shared_batch(writer, batch))
            if batch % 2:
                run_id, points = (own, _own_batch(batch))
            response = http.post(f"{API}/runs/{run_id}/metrics", json={"points": points})
            if response.status_code != 200:
                errors.append(f"{response.status_code} {response.text}")
                return
            acked.append(response.json()["accepted"])


def test_sixteen_writers_lose_nothing_acknowledged(database_url: str) -> None:
    env = {"MOMENTUM_DATABASE_URL": database_url}
    with live_server(env, workers=2) as url, httpx.Client(base_url=url, timeout=60) as http:
        shared = http.post(f"{API}/runs", json={"name": "shared"}).json()["id"]
        own = [http.post(f"{API}/runs", json={"name": f"own-{w}"}).json()["id"] for w in range(16)]
        acked: list[int] = []
        errors: list[str] = []
        writers = [
            threading.Thread(target=_write, args=(url, w, shared, own[w], acked, errors))
            for w in range(WRITERS)
        ]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join(timeout=300)
        assert errors == []
        assert len(acked) == WRITERS * BATCHES and sum(acked) == len(acked) * POINTS_PER_BATCH

        history = http.get(f"{API}/runs/{shared}/metrics/loss").json()
        shared_steps = WRITERS * POINTS_PER_BATCH * (BATCHES // 2) * 2
        expected = [s for s in range(shared_steps) if (s // WRITERS // POINTS_PER_BATCH) % 2 == 0]
        assert history["steps"] == expected
        assert history["values"] == [_value(s % WRITERS, s) for s in expected]
        for run_id in own:
            summary = http.get(f"{API}/runs/{run_id}/metrics").json()["items"]
            assert [(s["count"], s["last_step"]) for s in summary] == [
                (BATCHES // 2 * POINTS_PER_BATCH, BATCHES * POINTS_PER_BATCH - 1)
            ]
