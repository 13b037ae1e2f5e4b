"""Zoom summaries (#19): a downsampled read answered from per-cell and per-block
summaries equals what the same bucketing gives from the points themselves, whatever
batches, overwrites, retries, non-finite values and step windows led there; the
migration backfills them; a read really uses them."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from momentum.contract.metrics import MAX_STEP
from service import Settings, create_app
from service.db import make_engine
from service.migrate import downgrade, upgrade
from service.storage.blocks import BLOCK_STEPS, RECORD_DTYPE
from service.storage.cells import CELL_POINTS, block_summaries
from tests.factories import log_points, make_run

Point = tuple[int, float, float]  # step, value, wall_time
_VALUES = [0.0, 1.0, 1.0, 2.0, -3.5, 7.25, math.nan, math.inf, -math.inf]


def _encode(value: float) -> Any:
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value == math.inf else "-Infinity" if value == -math.inf else value


def _cells(series: list[Point], level: int) -> list[tuple[int, int]]:
    """Each point's cell at a zoom level, from the points alone: its block
    (step // BLOCK_STEPS) and, at level 1, its position in the block // CELL_POINTS."""
    out, rank, block_of_previous = [], 0, None
    for step, _, _ in series:
        block = step // BLOCK_STEPS
        rank = rank + 1 if block == block_of_previous else 0
        block_of_previous = block
        out.append((block, rank // CELL_POINTS if level == 1 else 0 if level == 2 else step))
    return out


def _reference(model: dict[int, Point], start: int, end: int, max_points: int) -> list[Point]:
    """The downsampling contract computed point by point with plain loops."""
    series = [model[step] for step in sorted(model)]
    cell_of = {1: _cells(series, 1), 2: _cells(series, 2)}
    inside = [i for i, (step, _, _) in enumerate(series) if start <= step <= end]
    if len(inside) <= max_points:
        return [series[i] for i in inside]
    buckets = max(1, max_points // 2)
    level = 0
    for candidate in (1, 2):
        if len({cell_of[candidate][i] for i in inside}) >= buckets:
            level = candidate
    groups: list[list[Point]] = []
    previous = None
    for i in inside:
        cell = i if level == 0 else cell_of[level][i]
        if cell != previous:
            groups.append([])
        groups[-1].append(series[i])
        previous = cell
    edges = np.linspace(0, len(groups), buckets + 1).astype(np.int64)
    picks: dict[int, Point] = {}
    for low_edge, high_edge in zip(edges[:-1], edges[1:], strict=True):
        bucket = [p for group in groups[low_edge:high_edge] for p in group]
        for point in _bucket_picks(bucket, max_points == 1):
            picks[point[0]] = point
    return [picks[step] for step in sorted(picks)]


def _bucket_picks(bucket: list[Point], single: bool) -> list[Point]:
    finite = [p for p in bucket if math.isfinite(p[1])]
    bad = [p for p in bucket if not math.isfinite(p[1])]
    low = [min(finite, key=lambda p: p[1])] if finite else []  # min: the first of ties
    if single:
        return bad[:1] or low
    high = [max(finite, key=lambda p: p[1])] if not bad else []
    return low + bad[:1] + high


@st.composite
def _history_of_batches(draw: st.DrawFn) -> list[list[int]]:
    """A training loop's batches, retries from step 0, late and huge steps."""
    out, next_step = [], 0
    for number in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["next", "next", "retry", "scatter"])) if number else "next"
        if kind == "next":
            length = draw(st.integers(1, 3 * BLOCK_STEPS))
            out.append(list(range(next_step, next_step + length)))
            next_step += length
        elif kind == "retry":
            out.append(list(range(draw(st.integers(1, 2 * BLOCK_STEPS)))))
        else:
            near = st.sampled_from([BLOCK_STEPS - 1, BLOCK_STEPS, 5 * BLOCK_STEPS, MAX_STEP])
            out.append(draw(st.lists(st.one_of(near, st.integers(0, MAX_STEP)), max_size=20)))
    return [steps for steps in out if steps]


_MAX_POINTS = st.sampled_from([1, 2, 3, 5, 10, 21, 64, 200, 1000])
_BOUND = st.one_of(
    st.integers(0, 4 * BLOCK_STEPS), st.sampled_from([0, BLOCK_STEPS, MAX_STEP - 1, MAX_STEP])
)


def _history(client: TestClient, run_id: int, **query: Any) -> dict[str, Any]:
    response = client.get(f"/api/v1/runs/{run_id}/metrics/loss", params=query)
    assert response.status_code == 200, response.text
    return response.json()


def _expect(client: TestClient, run_id: int, model: dict[int, Point], **query: Any) -> None:
    start, end = query.get("start_step", 0), query.get("end_step", MAX_STEP)
    expected = _reference(model, start, end, query["max_points"])
    got = _history(client, run_id, **query)
    assert got["steps"] == [p[0] for p in expected]
    assert got["values"] == [_encode(p[1]) for p in expected]
    assert got["wall_times"] == [p[2] for p in expected]
    assert got["total"] == sum(start <= step <= end for step in model)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    batches=_history_of_batches(),
    seed=st.integers(0, 2**32 - 1),
    reads=st.lists(st.tuples(_MAX_POINTS, _BOUND, _BOUND), min_size=1, max_size=4),
)
def test_downsampled_reads_from_summaries_equal_the_point_by_point_contract(
    client: TestClient, batches: list[list[int]], seed: int, reads: list[tuple[int, int, int]]
) -> None:
    rng = np.random.default_rng(seed)
    run_id = make_run(client)["id"]
    model: dict[int, Point] = {}
    for number, steps in enumerate(batches):
        values = rng.choice(
            _VALUES, size=len(steps), p=[0.2, 0.2, 0.1, 0.2, 0.1, 0.17, 0.01, 0.01, 0.01]
        )
        batch = [
            {"key": "loss", "step": s, "value": _encode(float(v)), "wall_time": number + 0.5}
            for s, v in zip(steps, values, strict=True)
        ]
        log_points(client, run_id, batch)
        model.update({s: (s, float(v), number + 0.5) for s, v in zip(steps, values, strict=True)})
    for max_points, first, second in reads:
        _expect(client, run_id, model, max_points=max_points)
        low, high = sorted((first, second))
        _expect(client, run_id, model, max_points=max_points, start_step=low, end_step=high)


def _long_run(client: TestClient, steps: int = 5 * BLOCK_STEPS + 700) -> int:
    """A run whose loss has spikes, a NaN and an Infinity far apart, and a chunked tail."""
    run_id = make_run(client)["id"]
    values: list[Any] = [1.0 + (s % 97) / 97 for s in range(steps)]
    for step, value in ((777, -50.0), (9000, "NaN"), (15000, "Infinity")):
        if step < steps:
            values[step] = value
    for first in range(0, steps, 3000):
        batch = [
            {"key": "loss", "step": s, "value": values[s], "wall_time": 1000.0 + s}
            for s in range(first, min(first + 3000, steps))
        ]
        log_points(client, run_id, batch)
    return run_id


_READS = [
    {"max_points": 40},
    {"max_points": 1000},
    {"max_points": 7, "start_step": 100, "end_step": 3 * BLOCK_STEPS + 5},
]


def test_a_downsampled_read_uses_summaries_not_the_points_of_whole_blocks(
    client: TestClient, engine: Engine
) -> None:
    run_id = _long_run(client)
    zoomed_out = [_READS[0], _READS[2]]  # 1,000 points of 21,180: a read of points
    before = [_history(client, run_id, **query) for query in zoomed_out]
    assert -50.0 in before[0]["values"] and {"NaN", "Infinity"} <= set(before[0]["values"])
    # Zeroed points inside blocks 1 and 2: only a read that ignores them still agrees.
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE point_blocks SET data = :zeros WHERE block BETWEEN 1 AND 2"),
            {"zeros": bytes(BLOCK_STEPS * RECORD_DTYPE.itemsize)},
        )
    assert [_history(client, run_id, **query) for query in zoomed_out] == before


def test_blocks_without_summaries_are_read_as_points(client: TestClient, engine: Engine) -> None:
    run_id = _long_run(client)
    before = [_history(client, run_id, **query) for query in _READS]
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM point_summaries"))
    assert [_history(client, run_id, **query) for query in _READS] == before


def test_compare_reads_the_same_downsampled_curves(client: TestClient) -> None:
    first, second = _long_run(client), _long_run(client, steps=300)
    ids = f"{first},{second}"
    query = {"run_ids": ids, "keys": "loss", "max_points": 40, "x": "wall_time"}
    response = client.get("/api/v1/compare", params=query)
    assert response.status_code == 200, response.text
    series = response.json()["series"]
    history = _history(client, first, max_points=40)
    assert series[0]["steps"] == history["steps"] and series[0]["values"] == history["values"]
    assert series[0]["wall_times"][0] == history["wall_times"][0] - 1000.0
    assert (series[0]["total"], series[0]["downsampled"]) == (history["total"], True)
    assert (series[1]["total"], series[1]["downsampled"]) == (300, True)


def test_the_migration_backfills_summaries_of_existing_blocks(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        run_id = _long_run(client)
        before = [_history(client, run_id, **query) for query in _READS]
    downgrade(settings, "0015")
    upgrade(settings)
    engine = make_engine(settings)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT b.data, s.cells, s.summary FROM point_blocks b "
                    "JOIN point_summaries s ON (s.series_id, s.block) = (b.series_id, b.block)"
                )
            )
            stored = rows.fetchall()
        assert len(stored) == 5
        for data, cells, summary in stored:
            expected = block_summaries(np.frombuffer(data, dtype=RECORD_DTYPE))
            assert (bytes(cells), bytes(summary)) == expected
    finally:
        engine.dispose()
    with TestClient(create_app(settings)) as client:
        assert [_history(client, run_id, **query) for query in _READS] == before


def _compare(client: TestClient, run_ids: list[int], **query: Any) -> list[dict[str, Any]]:
    params = {"run_ids": ",".join(map(str, run_ids)), "keys": "loss", **query}
    response = client.get("/api/v1/compare", params=params)
    assert response.status_code == 200, response.text
    return list(response.json()["series"])


def _same_as_reference(got: dict[str, Any], model: dict[int, Point], **query: Any) -> None:
    start, end = query.get("start_step", 0), query.get("end_step", MAX_STEP)
    expected = _reference(model, start, end, query["max_points"])
    assert got["steps"] == [p[0] for p in expected]
    assert got["values"] == [_encode(p[1]) for p in expected]
    assert got["total"] == sum(start <= step <= end for step in model)


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    histories=st.lists(_history_of_batches(), min_size=2, max_size=4),
    read=st.tuples(_MAX_POINTS, _BOUND, _BOUND),
)
def test_a_compare_reads_all_its_runs_together_as_each_alone(
    client: TestClient, histories: list[list[list[int]]], read: tuple[int, int, int]
) -> None:
    """One compare reads every series in the same few queries: each still gets the
    answer of its own points, whatever the others hold."""
    models, run_ids = [], []
    for number, batches in enumerate(histories):
        run_ids.append(make_run(client)["id"])
        model: dict[int, Point] = {}
        for steps in batches:
            values = [_VALUES[(s * 7 + number) % 6] for s in steps]  # finite, varied
            batch = [
                {"key": "loss", "step": s, "value": v, "wall_time": float(number)}
                for s, v in zip(steps, values, strict=True)
            ]
            log_points(client, run_ids[-1], batch)
            model.update({s: (s, v, float(number)) for s, v in zip(steps, values, strict=True)})
        models.append(model)
    max_points, first, second = read
    low, high = sorted((first, second))
    for query in (
        {"max_points": max_points},
        {"max_points": max_points, "start_step": low, "end_step": high},
    ):
        for got, model in zip(_compare(client, run_ids, **query), models, strict=True):
            _same_as_reference(got, model, **query)


def test_rows_from_before_blocks_beside_the_window_are_read_with_their_block(
    client: TestClient, engine: Engine
) -> None:
    """Rows kept in `points` (databases from before revision 0004) in and beside the
    window: those series are read apart, and each series gets its own answer whichever
    others are read with it."""
    old, plain = make_run(client)["id"], _long_run(client)
    logged = [*range(2 * BLOCK_STEPS), *range(2 * BLOCK_STEPS + 100, 3 * BLOCK_STEPS - 1)]
    values = {s: float((s * 7) % 11) for s in logged}
    for first in range(0, len(logged), 3000):
        batch = [
            {"key": "loss", "step": s, "value": values[s], "wall_time": 1.0}
            for s in logged[first : first + 3000]
        ]
        log_points(client, old, batch)
    legacy = range(2 * BLOCK_STEPS, 2 * BLOCK_STEPS + 60)  # before the window, in its block
    with engine.begin() as connection:
        series_id = connection.execute(
            text("SELECT id FROM series WHERE run_id = :run AND key = 'loss'"), {"run": old}
        ).scalar_one()
        connection.execute(
            text(
                "INSERT INTO points (series_id, step, value, wall_time) "
                "VALUES (:s, :step, 5.0, 1.0)"
            ),
            [{"s": series_id, "step": step} for step in legacy],
        )
    cut = {"max_points": 40, "start_step": 2 * BLOCK_STEPS + 70}
    for query in (cut, {"max_points": 40}, {"max_points": 40, "start_step": 2 * BLOCK_STEPS}):
        together = _compare(client, [plain, old], **query)
        assert together == _compare(client, [plain], **query) + _compare(client, [old], **query)
