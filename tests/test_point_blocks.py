"""Blocks and chunks: points live in packed arrays without changing any answer."""

from __future__ import annotations

import numpy as np
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from service import Settings, create_app
from service.db import make_engine
from service.migrate import downgrade, upgrade
from service.models import Point, PointBlock, PointChunk, Series
from service.storage.blocks import BLOCK_STEPS, RECORD_DTYPE, merge
from service.storage.compare import read_in_chunks
from tests.factories import log_points, make_run, points

STEPS = 3 * BLOCK_STEPS + 123


def _history(client: TestClient, run_id: int, key: str = "loss", **query: object) -> dict:
    response = client.get(f"/api/v1/runs/{run_id}/metrics/{key}", params=query)
    assert response.status_code == 200, response.text
    return response.json()


def _log_in_batches(client: TestClient, run_id: int, batch: list[dict], size: int = 1000) -> None:
    for start in range(0, len(batch), size):
        log_points(client, run_id, batch[start : start + size])


def _storage(engine: Engine) -> tuple[int, int, int, int]:
    """Rows, block rows, chunk rows, and the points blocks and chunks hold."""
    with Session(engine) as session:
        rows = session.scalar(select(func.count()).select_from(Point))
        block_count = session.scalar(select(func.count()).select_from(PointBlock))
        chunk_count = session.scalar(select(func.count()).select_from(PointChunk))
        packed = sum(
            int(session.scalar(select(func.coalesce(func.sum(piece.count), 0))) or 0)
            for piece in (PointBlock, PointChunk)
        )
    return int(rows or 0), int(block_count or 0), int(chunk_count or 0), packed


def test_points_are_stored_in_blocks_and_read_back_unchanged(
    client: TestClient, engine: Engine
) -> None:
    run = make_run(client)
    batch = points("loss", range(STEPS))
    batch[10]["value"] = "NaN"
    batch[5000]["value"] = "-Infinity"
    _log_in_batches(client, run["id"], batch)
    # Three full blocks folded as the series passed them; the tail block's points are
    # the last batch's chunk.
    assert _storage(engine) == (0, 3, 1, STEPS)
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
    rows, _, _, packed = _storage(engine)
    assert rows + packed == STEPS  # each step once
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
    assert _storage(engine) == (0, 2, 1, 4)  # blocks 0 and 1, a chunk at 10**12


def test_deleting_a_run_deletes_its_blocks(client: TestClient, engine: Engine) -> None:
    run = make_run(client)
    _log_in_batches(client, run["id"], points("loss", range(2 * BLOCK_STEPS + 1)))
    assert client.delete(f"/api/v1/runs/{run['id']}").status_code == 204
    assert _storage(engine) == (0, 0, 0, 0)
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Series)) == 0


def _records(steps: list[int], value: float) -> np.ndarray:
    records = np.zeros(len(steps), dtype=RECORD_DTYPE)
    records["step"] = steps
    records["value"] = value
    return records


@settings(max_examples=200, deadline=None)
@given(
    older=st.sets(st.integers(0, 50), max_size=40).map(sorted),
    newer=st.lists(st.integers(0, 50), max_size=40),
)
def test_merge_is_a_sorted_union_where_newer_wins(older: list[int], newer: list[int]) -> None:
    merged = merge(_records(older, 1.0), _records(newer, 2.0))
    assert merged["step"].tolist() == sorted(set(older) | set(newer))
    for step, value in zip(merged["step"].tolist(), merged["value"].tolist(), strict=True):
        assert value == (2.0 if step in newer else 1.0)


def _legacy_layout(engine: Engine, run_id: int) -> None:
    """A series as revision 0003 wrote it: block 0 sealed, the tail (with a NaN) as rows."""
    sealed = _records(list(range(BLOCK_STEPS)), 3.0)
    tail = [(step, None if step == 4100 else 1.0 / step) for step in range(BLOCK_STEPS, 4200)]
    with engine.begin() as connection:
        series_id = connection.execute(
            text(
                "INSERT INTO series (run_id, key, sealed_until) VALUES (:r, 'loss', :s) "
                "RETURNING id"
            ),
            {"r": run_id, "s": BLOCK_STEPS},
        ).scalar_one()
        connection.execute(
            text(
                "INSERT INTO point_blocks (series_id, block, first_step, last_step, count, data) "
                "VALUES (:s, 0, 0, :last, :count, :data)"
            ),
            {
                "s": series_id,
                "last": BLOCK_STEPS - 1,
                "count": BLOCK_STEPS,
                "data": sealed.tobytes(),
            },
        )
        connection.execute(
            text("INSERT INTO points (series_id, step, value, wall_time) VALUES (:s, :t, :v, 0)"),
            [{"s": series_id, "t": step, "v": value} for step, value in tail],
        )


def _series_id(engine: Engine, run_id: int) -> int:
    with Session(engine) as session:
        return session.scalar(select(Series.id).where(Series.run_id == run_id)) or 0


def test_series_written_before_revision_0004_read_alike_and_move_into_blocks(
    settings: Settings,
) -> None:
    with TestClient(create_app(settings)) as client:
        run_id = make_run(client)["id"]
    downgrade(settings, "0003")
    engine = make_engine(settings)
    try:
        _legacy_layout(engine, run_id)
        upgrade(settings)
        with TestClient(create_app(settings)) as client:
            listed = client.get(f"/api/v1/runs/{run_id}").json()
            assert (listed["last_step"], listed["latest"]) == (4199, {"loss": 1.0 / 4199})
            history = _history(client, run_id)
            assert history["steps"] == list(range(4200))
            assert history["values"][4100] == "NaN" and history["values"][0] == 3.0
            # Export windows of 30 points: the block whole, then the rows 30 at a time.
            series_id = _series_id(engine, run_id)
            windows = list(read_in_chunks(sessionmaker(engine), series_id, 30))
            assert [len(w) for w in windows] == [BLOCK_STEPS] + [30] * 3 + [14]
            assert np.concatenate(windows)["step"].tolist() == list(range(4200))
            log_points(client, run_id, points("loss", range(4200, 4300)))
            assert _storage(engine) == (0, 2, 1, 4300)  # the rows moved into their block
            history = _history(client, run_id)
            assert history["steps"] == list(range(4300))
            assert history["values"][4100] == "NaN" and history["values"][4150] == 1.0 / 4150
    finally:
        engine.dispose()
