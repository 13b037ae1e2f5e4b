"""Chunks: a batch appends its points as a small row; reads, late points, folding and
a downgrade see exactly the points a plain (key, step) table would hold."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from service import Settings, create_app
from service.db import make_engine
from service.migrate import downgrade, upgrade
from service.models import PointBlock, PointChunk, Series
from service.storage import blocks
from service.storage.blocks import BLOCK_STEPS
from tests.factories import log_points, make_run

# Steps near block boundaries, so batches cross them, fold and append in every order.
_STEP = st.one_of(
    st.integers(0, 3 * BLOCK_STEPS + 50),
    st.sampled_from([BLOCK_STEPS - 1, BLOCK_STEPS, 2 * BLOCK_STEPS - 1, 2 * BLOCK_STEPS]),
)
_RUN = st.tuples(st.integers(0, 3 * BLOCK_STEPS), st.integers(1, 300))  # first step, length


@st.composite
def _batches(draw: st.DrawFn) -> list[list[int]]:
    """Mostly a training loop's next steps, sometimes late or repeated ones."""
    out, cursor = [], 0
    for _ in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(["next", "next", "next", "run", "scatter"]))
        if kind == "next":
            length = draw(st.integers(1, 700))
            out.append(list(range(cursor, cursor + length)))
            cursor += length
        elif kind == "run":
            first, length = draw(_RUN)
            out.append(list(range(first, first + length)))
        else:
            out.append(draw(st.lists(_STEP, min_size=1, max_size=30)))
    return out


def _history(client: TestClient, run_id: int, **query: Any) -> dict[str, Any]:
    response = client.get(f"/api/v1/runs/{run_id}/metrics/loss", params=query)
    assert response.status_code == 200, response.text
    return response.json()


def _check_layout(engine: Engine, run_id: int, expected: int) -> None:
    """Pieces never overlap and chunks sit in the block of the series' last step only,
    as many as the series counts."""
    with Session(engine) as session:
        series = session.scalars(select(Series).where(Series.run_id == run_id)).one()
        ranges = [
            (first, last, count, kind)
            for kind, piece in (("block", PointBlock), ("chunk", PointChunk))
            for first, last, count in session.execute(
                select(piece.first_step, piece.last_step, piece.count).where(
                    piece.series_id == series.id
                )
            )
        ]
    ranges.sort()
    assert sum(count for _, _, count, _ in ranges) == expected
    for (_, last, _, _), (first, _, _, _) in zip(ranges, ranges[1:], strict=False):
        assert last < first
    chunks = [first for first, _, _, kind in ranges if kind == "chunk"]
    assert series.tail_chunks == len(chunks)
    assert series.last_step is not None
    tail = series.last_step // BLOCK_STEPS
    assert all(first // BLOCK_STEPS == tail for first in chunks)


@pytest.mark.parametrize("limit", [3, blocks.CHUNK_LIMIT])
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batches=_batches())
def test_any_sequence_of_batches_reads_back_as_upserts(
    client: TestClient,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    limit: int,
    batches: list[list[int]],
) -> None:
    monkeypatch.setattr(blocks, "CHUNK_LIMIT", limit)
    run_id = make_run(client)["id"]
    model: dict[int, float] = {}
    for number, steps in enumerate(batches):
        value = float(number)
        log_points(client, run_id, [{"key": "loss", "step": s, "value": value} for s in steps])
        model.update(dict.fromkeys(steps, value))
    history = _history(client, run_id)
    assert history["steps"] == sorted(model)
    assert history["values"] == [model[s] for s in sorted(model)]
    _check_layout(engine, run_id, len(model))
    first, last = BLOCK_STEPS - 10, 2 * BLOCK_STEPS + 10
    ranged = _history(client, run_id, start_step=first, end_step=last)
    assert ranged["steps"] == [s for s in sorted(model) if first <= s <= last]
    summary = client.get(f"/api/v1/runs/{run_id}/metrics").json()["items"][0]
    assert (summary["count"], summary["first_step"], summary["last_step"]) == (
        len(model),
        min(model),
        max(model),
    )


def test_small_batches_gather_in_chunks_and_fold_when_the_series_moves_on(
    client: TestClient, engine: Engine
) -> None:
    run_id = make_run(client)["id"]
    for first in range(0, BLOCK_STEPS + 104, 100):  # steps 0..4199
        batch = [{"key": "loss", "step": s, "value": s} for s in range(first, first + 100)]
        log_points(client, run_id, batch)
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(PointBlock)) == 1
        assert session.scalar(select(func.count()).select_from(PointChunk)) == 2
    _check_layout(engine, run_id, 4200)


def test_chunks_keep_non_finite_values_and_extremes(client: TestClient) -> None:
    run_id = make_run(client)["id"]
    values: list[Any] = ["NaN", 3.0, "Infinity", 0.5, "-Infinity"]
    log_points(
        client, run_id, [{"key": "acc", "step": s, "value": v} for s, v in enumerate(values)]
    )
    response = client.get(f"/api/v1/runs/{run_id}/metrics/acc").json()
    assert response["values"] == values
    listed = client.get(f"/api/v1/runs/{run_id}/metrics").json()["items"][0]
    assert (listed["count"], listed["last_value"]) == (5, "-Infinity")
    run = client.get(f"/api/v1/runs/{run_id}").json()
    assert run["latest"] == {"acc": "-Infinity"}


def test_downgrade_folds_chunks_into_blocks_and_upgrade_reads_them(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        run_id = make_run(client)["id"]
        for first in range(0, BLOCK_STEPS + 700, 350):
            batch = [{"key": "loss", "step": s, "value": s / 7} for s in range(first, first + 350)]
            batch[0]["value"] = "NaN"
            log_points(client, run_id, batch)
        before = _history(client, run_id)
    downgrade(settings, "0006")
    engine = make_engine(settings)
    try:
        with engine.connect() as connection:
            total = connection.exec_driver_sql("SELECT sum(count) FROM point_blocks").scalar_one()
        assert total == len(before["steps"])
        upgrade(settings)
        with TestClient(create_app(settings)) as client:
            assert _history(client, run_id) == before
            log_points(client, run_id, [{"key": "loss", "step": 10**6, "value": 1.0}])
            assert _history(client, run_id)["steps"][-1] == 10**6
        _check_layout(engine, run_id, len(before["steps"]) + 1)
    finally:
        engine.dispose()
