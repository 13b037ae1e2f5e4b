"""Sealed blocks: older points move into packed arrays without changing any answer."""

from __future__ import annotations

import numpy as np
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from service.models import Point, PointBlock, Series
from service.storage.blocks import BLOCK_STEPS, RECORD_DTYPE, merge
from tests.factories import log_points, make_run, points

STEPS = 3 * BLOCK_STEPS + 123


def _history(client: TestClient, run_id: int, key: str = "loss", **query: object) -> dict:
    response = client.get(f"/api/v1/runs/{run_id}/metrics/{key}", params=query)
    assert response.status_code == 200, response.text
    return response.json()


def _log_in_batches(client: TestClient, run_id: int, batch: list[dict], size: int = 1000) -> None:
    for start in range(0, len(batch), size):
        log_points(client, run_id, batch[start : start + size])


def _storage(engine: Engine) -> tuple[int, int, int]:
    with Session(engine) as session:
        rows = session.scalar(select(func.count()).select_from(Point))
        block_count = session.scalar(select(func.count()).select_from(PointBlock))
        sealed_points = session.scalar(select(func.coalesce(func.sum(PointBlock.count), 0)))
    return int(rows or 0), int(block_count or 0), int(sealed_points or 0)


def test_passed_blocks_are_sealed_and_reads_are_unchanged(
    client: TestClient, engine: Engine
) -> None:
    run = make_run(client)
    batch = points("loss", range(STEPS))
    batch[10]["value"] = "NaN"
    batch[5000]["value"] = "-Infinity"
    _log_in_batches(client, run["id"], batch)
    rows, block_count, sealed_points = _storage(engine)
    assert block_count == 3 and sealed_points == 3 * BLOCK_STEPS
    assert rows == STEPS - 3 * BLOCK_STEPS
    history = _history(client, run["id"])
    assert history["steps"] == list(range(STEPS))
    assert history["values"][10] == "NaN" and history["values"][5000] == "-Infinity"
    assert history["values"][11] == 1 / 12
    ranged = _history(client, run["id"], start_step=4000, end_step=8300)
    assert ranged["steps"] == list(range(4000, 8301))
    summary = client.get(f"/api/v1/runs/{run['id']}/metrics").json()["items"][0]
    assert (summary["count"], summary["first_step"], summary["last_step"]) == (
        STEPS,
        0,
        STEPS - 1,
    )


def test_late_points_merge_into_sealed_blocks_newest_winning(
    client: TestClient, engine: Engine
) -> None:
    run = make_run(client)
    _log_in_batches(client, run["id"], points("loss", range(STEPS), 1.0))
    # A retried job restarts at step 0 and writes everything again, differently.
    _log_in_batches(client, run["id"], points("loss", range(STEPS), 2.0))
    history = _history(client, run["id"])
    assert history["steps"] == list(range(STEPS))
    assert set(history["values"]) == {2.0}
    assert sum(_storage(engine)[0::2]) == STEPS  # rows + sealed points: each step once
    log_points(client, run["id"], [{"key": "loss", "step": 7, "value": "Infinity"}])
    assert _history(client, run["id"], start_step=6, end_step=8)["values"] == [
        2.0,
        "Infinity",
        2.0,
    ]


def test_sparse_and_huge_steps_seal_only_what_exists(client: TestClient, engine: Engine) -> None:
    run = make_run(client)
    steps = [0, 100, 5_000, 10**12]
    log_points(client, run["id"], [{"key": "val", "step": s, "value": s} for s in steps])
    assert _history(client, run["id"], "val")["steps"] == steps
    rows, block_count, sealed_points = _storage(engine)
    assert (rows, block_count, sealed_points) == (1, 2, 3)


def test_deleting_a_run_deletes_its_blocks(client: TestClient, engine: Engine) -> None:
    run = make_run(client)
    _log_in_batches(client, run["id"], points("loss", range(2 * BLOCK_STEPS + 1)))
    assert client.delete(f"/api/v1/runs/{run['id']}").status_code == 204
    assert _storage(engine) == (0, 0, 0)
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Series)) == 0


def _records(steps: list[int], value: float) -> np.ndarray:
    records = np.zeros(len(steps), dtype=RECORD_DTYPE)
    records["step"] = steps
    records["value"] = value
    return records


@settings(max_examples=200, deadline=None)
@given(
    older=st.lists(st.integers(0, 50), max_size=40),
    newer=st.lists(st.integers(0, 50), max_size=40),
)
def test_merge_is_a_sorted_union_where_newer_wins(older: list[int], newer: list[int]) -> None:
    merged = merge(_records(older, 1.0), _records(newer, 2.0))
    assert merged["step"].tolist() == sorted(set(older) | set(newer))
    for step, value in zip(merged["step"].tolist(), merged["value"].tolist(), strict=True):
        assert value == (2.0 if step in newer else 1.0)
