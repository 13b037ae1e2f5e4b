"""The reporter against the fake service: batching, retries, outages, bounded memory."""

from __future__ import annotations

import logging
import math
import tracemalloc
from pathlib import Path

import orjson
import pytest

from momentum.client import MomentumClient, sync_spool
from momentum.client.encoding import BatchEncoder
from momentum.client.spool import POINTS, iter_records
from tests.fake_service import FakeService, make_run, wait_until

KEYS = ("loss", "accuracy", "lr", "grad_norm", "update_norm")


def log_steps(run: object, steps: range) -> None:
    for step in steps:
        run.log(step, {key: step / 7 for key in KEYS})  # type: ignore[attr-defined]


def assert_all_once(service: FakeService, run_id: int, steps: int) -> None:
    """Every key has every step exactly once, and no accepted point was sent twice."""
    for key in KEYS:
        assert service.steps(run_id, key) == list(range(steps))
    assert len(service.sent_steps()) == steps * len(KEYS)


def test_batches_are_cut_at_batch_points(tmp_path: Path) -> None:
    service = FakeService()
    with make_run(service, tmp_path, batch_points=100, flush_interval=60.0) as run:
        log_steps(run, range(1000))
    sizes = [len(batch) for batch in service.batches]
    assert sizes == [100] * 50  # one drain at close: 5,000 points in full batches
    assert_all_once(service, run.id, 1000)  # type: ignore[arg-type]


def test_values_are_sent_every_flush_interval_without_closing(tmp_path: Path) -> None:
    service = FakeService()
    with make_run(service, tmp_path, flush_interval=0.02) as run:
        run.log(0, loss=1.0)
        wait_until(lambda: len(service.batches) == 1)
        run.log(1, loss=0.5)
        wait_until(lambda: len(service.batches) == 2)


def test_server_errors_are_retried_with_backoff_until_delivered(tmp_path: Path) -> None:
    service = FakeService(fail_with=[503, 500, 429])  # the first three requests fail
    with make_run(service, tmp_path) as run:
        log_steps(run, range(50))
    assert run.reporter is not None and run.reporter.stats.send_failures == 3
    assert_all_once(service, run.id, 50)  # type: ignore[arg-type]
    assert service.runs[run.id]["status"] == "succeeded"  # type: ignore[index]


def test_while_down_points_spool_to_disk_and_replay_in_order(tmp_path: Path) -> None:
    service = FakeService()
    with make_run(service, tmp_path, batch_points=200) as run:
        log_steps(run, range(100))
        wait_until(lambda: len(service.sent_steps()) == 100 * len(KEYS))
        service.down = True
        log_steps(run, range(100, 1000))
        reporter = run.reporter
        assert reporter is not None
        wait_until(lambda: reporter.outbox.spool.pending_points == 900 * len(KEYS))
        assert reporter.outbox.memory_bytes == 0 and service.refused > 0
        records = list(iter_records(run.spool_path))[1:]
        assert {r.kind for r in records} == {POINTS} and len(records) >= 23
        service.down = False
    assert_all_once(service, run.id, 1000)  # type: ignore[arg-type]
    assert service.sent_steps() == sorted(service.sent_steps()), "replayed out of order"
    assert not run.spool_path.exists()


def test_a_run_created_while_down_is_created_on_reconnect_before_its_points(
    tmp_path: Path,
) -> None:
    service = FakeService(down=True)
    with make_run(service, tmp_path, name="offline-start") as run:
        log_steps(run, range(300))
        wait_until(lambda: run.spool_path.exists() and service.refused >= 2)
        assert run.id is None and service.runs == {}
        service.down = False
        assert run.wait_for_id(10.0) == 1
    assert service.runs[1]["name"] == "offline-start"
    assert service.log[0] == "POST /api/v1/runs -> 201"
    assert_all_once(service, 1, 300)


def test_memory_stays_bounded_while_down_for_100k_points(tmp_path: Path) -> None:
    service = FakeService(down=True)
    steps = 100_000 // len(KEYS)
    run = make_run(service, tmp_path, max_queue=2_000, max_memory_bytes=64 * 1024)
    tracemalloc.start()
    try:
        with run:
            log_steps(run, range(steps))
            reporter = run.reporter
            assert reporter is not None
            wait_until(lambda: reporter.outbox.spool.pending_points == 100_000, timeout=60)
            _, peak = tracemalloc.get_traced_memory()
            service.down = False
    finally:
        tracemalloc.stop()
    # Held in RAM, 100,000 points are ~20 MB of dicts and floats; the bound keeps a
    # couple of thousand entries plus the batch being encoded.
    assert peak < 6 * 1024 * 1024, f"peak traced memory {peak / 2**20:.1f} MiB"
    assert reporter.stats.max_queue_seen <= 2_000
    assert_all_once(service, run.id, steps)  # type: ignore[arg-type]


def test_a_close_that_times_out_leaves_a_spool_that_sync_replays(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    down = FakeService(down=True)
    with caplog.at_level(logging.WARNING, logger="momentum.client"):
        with make_run(down, tmp_path, close_timeout=0.2) as run:
            log_steps(run, range(1000))
    assert run.unsent_path == run.spool_path and run.spool_path.exists()
    assert str(run.spool_path) in caplog.text and "momentum sync" in caplog.text
    service = FakeService()
    result = sync_spool(run.spool_path, MomentumClient(transport=service.transport()))
    assert (result.run_id, result.points, result.updates) == (1, 1000 * len(KEYS), 1)
    assert service.runs[1]["status"] == "succeeded"
    assert_all_once(service, 1, 1000)
    assert not run.spool_path.exists()


def test_a_new_run_with_the_same_external_id_replays_the_left_spool(tmp_path: Path) -> None:
    service = FakeService(down=True)
    with make_run(service, tmp_path, external_id="resume-me", close_timeout=0.1) as first:
        log_steps(first, range(500))
    assert first.unsent_path is not None
    service.down = False
    with make_run(service, tmp_path, external_id="resume-me") as second:
        log_steps(second, range(500, 800))
    assert second.unsent_path is None and not second.spool_path.exists()
    assert_all_once(service, 1, 800)
    assert service.runs[1]["status"] == "succeeded"


def test_a_refused_token_keeps_every_point_spooled(tmp_path: Path) -> None:
    service = FakeService()
    service.fail_with, service.fail_path = [401], "/metrics"
    with make_run(service, tmp_path, close_timeout=0.5) as run:
        log_steps(run, range(20))
    assert run.unsent_path is not None and service.sent_steps() == []
    points = sum(r.points for r in iter_records(run.unsent_path))
    assert points == 20 * len(KEYS)


def test_a_rejected_batch_is_dropped_and_the_rest_still_arrive(tmp_path: Path) -> None:
    service = FakeService()
    with make_run(service, tmp_path, flush_interval=60.0, batch_points=50) as run:
        log_steps(run, range(30))
        service.fail_with, service.fail_path = [422], "/metrics"  # the first batch
    assert run.reporter is not None and run.reporter.stats.points_rejected == 50
    assert service.steps(run.id, "loss") == list(range(10, 30))  # type: ignore[arg-type]
    assert service.runs[run.id]["status"] == "succeeded"  # type: ignore[index]


def test_the_encoder_writes_non_finite_values_as_the_contract_strings() -> None:
    encoder = BatchEncoder()
    body, count = encoder.encode([(0, 1.5, {"a": math.nan, "b": math.inf, "c": -math.inf})])
    values = [point["value"] for point in orjson.loads(body)["points"]]
    assert (count, values) == (3, ["NaN", "Infinity", "-Infinity"])
    finite, _ = encoder.encode([(1, 2.5, {"a": 0.25})])
    assert orjson.loads(finite) == {
        "points": [{"key": "a", "step": 1, "value": 0.25, "wall_time": 2.5}]
    }
