"""`momentum.Run` against the fake service: lifecycle, the two `log` forms, values, updates."""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import momentum
from momentum.client import Run
from tests.fake_service import FakeService, make_run, wait_until


def test_leaving_the_block_marks_the_run_succeeded_with_every_point(tmp_path: Path) -> None:
    service = FakeService()
    with make_run(service, tmp_path, params={"momentum": 0.9}, tags={"team": "a"}) as run:
        for step in range(500):
            run.log(step, loss=1 / (step + 1), accuracy=step / 500)
    stored = service.runs[run.id]  # type: ignore[index]
    assert (stored["status"], stored["params"], stored["tags"]) == (
        "succeeded",
        {"momentum": 0.9},
        {"team": "a"},
    )
    assert service.steps(run.id, "loss") == list(range(500))  # type: ignore[arg-type]
    assert sorted(service.sent_steps()) == sorted(list(range(500)) * 2)  # nothing sent twice
    assert not any(tmp_path.iterdir()), "a delivered run leaves no spool file"


def test_a_raising_block_marks_the_run_failed_and_the_error_propagates(tmp_path: Path) -> None:
    service = FakeService()
    with pytest.raises(ZeroDivisionError):
        with make_run(service, tmp_path) as run:
            run.log(0, loss=1.0)
            _ = 1 / 0
    assert service.runs[run.id]["status"] == "failed"  # type: ignore[index]
    assert service.steps(run.id, "loss") == [0]  # type: ignore[arg-type]


def test_log_takes_keywords_a_mapping_or_both(tmp_path: Path) -> None:
    service = FakeService()
    with make_run(service, tmp_path) as run:
        run.log(0, loss=1.0, accuracy=0.1)
        values = {"loss": 2.0, "train/acc": 0.2}
        run.log(1, values)
        values["loss"] = 99.0  # the caller may reuse its dict: what was logged is kept
        run.log(2, {"loss": 3.0}, step=5.0, values=6.0)  # "step" and "values" are fine keys
    run_id = run.id
    assert run_id is not None
    assert [service.value(run_id, "loss", s) for s in range(3)] == [1.0, 2.0, 3.0]
    assert service.value(run_id, "train/acc", 1) == 0.2
    assert (service.value(run_id, "step", 2), service.value(run_id, "values", 2)) == (5.0, 6.0)


def test_non_finite_values_arrive_as_themselves(tmp_path: Path) -> None:
    service = FakeService()
    with make_run(service, tmp_path) as run:
        run.log(0, loss=math.nan, up=math.inf, down=-math.inf, fine=1.5)
    run_id = run.id
    assert run_id is not None
    assert math.isnan(service.value(run_id, "loss", 0))
    assert [service.value(run_id, k, 0) for k in ("up", "down", "fine")] == [
        math.inf,
        -math.inf,
        1.5,
    ]


def test_scalars_of_other_types_are_converted_and_junk_is_dropped_alone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    service = FakeService()
    with make_run(service, tmp_path) as run:
        run.log(np.int64(3), loss=np.float32(0.5), epoch=2)  # type: ignore[arg-type]
        run.log(4, {"loss": 0.25, "flag": True, "note": "text", "bad:key": 1.0})
        run.log(-1, loss=9.0)
    run_id = run.id
    assert run_id is not None
    assert service.steps(run_id, "loss") == [3, 4]
    assert service.value(run_id, "epoch", 3) == 2.0
    assert {key for key, _ in service.points[run_id]} == {"loss", "epoch"}
    assert run.reporter is not None and run.reporter.stats.points_rejected == 4
    assert "bad:key" in caplog.text and "step -1" in caplog.text


def test_the_same_external_id_gives_the_same_run(tmp_path: Path) -> None:
    service = FakeService()
    with make_run(service, tmp_path, external_id="job-7") as first:
        first.log(0, loss=1.0)
    with make_run(service, tmp_path, external_id="job-7") as second:
        second.log(1, loss=0.5)
    assert first.id == second.id and len(service.runs) == 1
    assert service.steps(first.id, "loss") == [0, 1]  # type: ignore[arg-type]


def test_updates_and_divergence_arrive_in_order_with_the_values(tmp_path: Path) -> None:
    service = FakeService()
    with make_run(service, tmp_path) as run:
        run.log(0, loss=1.0)
        run.update(name="renamed", diverged=True)
        run.log(1, loss=math.nan)
    stored = service.runs[run.id]  # type: ignore[index]
    assert (stored["name"], stored["diverged"], stored["status"]) == ("renamed", True, "succeeded")
    patch = service.log.index(f"PATCH /api/v1/runs/{run.id} -> 200")
    metrics = [i for i, line in enumerate(service.log) if "/metrics" in line]
    assert metrics[0] < patch < metrics[-1]


def test_logging_outside_the_block_is_an_error(tmp_path: Path) -> None:
    run = make_run(FakeService(), tmp_path)
    with pytest.raises(RuntimeError, match="start the run first"):
        run.log(0, loss=1.0)
    with run:
        run.log(0, loss=1.0)
    with pytest.raises(RuntimeError, match="finished"):
        run.log(1, loss=1.0)


def test_log_never_waits_for_a_hanging_service(tmp_path: Path) -> None:
    service = FakeService(gate=threading.Event())  # every request hangs until the gate opens
    with make_run(service, tmp_path) as run:
        started = time.perf_counter()
        for step in range(2000):
            run.log(step, loss=0.1, accuracy=0.2)
        elapsed = time.perf_counter() - started
        assert service.runs == {} and elapsed < 1.0
        assert service.gate is not None
        service.gate.set()
    assert service.steps(run.id, "accuracy") == list(range(2000))  # type: ignore[arg-type]


def test_heartbeats_are_sent_while_the_run_is_open(tmp_path: Path) -> None:
    service = FakeService()
    with make_run(service, tmp_path, heartbeat_interval=0.01) as run:
        run.log(0, loss=1.0)
        wait_until(lambda: run.id is not None and service.runs[run.id]["heartbeats"] >= 3)


def test_run_is_exported_from_the_top_package() -> None:
    assert momentum.Run is Run
    with pytest.raises(AttributeError):
        _ = momentum.NoSuchThing  # type: ignore[attr-defined]


def test_inside_an_entry_points_child_run_attaches_to_the_jobs_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MOMENTUM_RUN_ID (set by the worker): `Run()` writes that run, creates none, and
    keeps its params; its spool file is named after the job's run (`job-<id>`)."""
    service = FakeService()
    with make_run(service, tmp_path, name="job-7", params={"momentum": 0.5}) as job_run:
        pass
    service.runs[job_run.id]["status"] = "running"  # type: ignore[index]
    monkeypatch.setenv("MOMENTUM_RUN_ID", str(job_run.id))
    monkeypatch.setenv("MOMENTUM_JOB_ID", "7")
    with make_run(service, tmp_path, name=None, params={"ignored": 1}) as run:
        run.log(0, loss=1.0)
        run.log(1, loss=0.5)
    assert run.id == job_run.id and len(service.runs) == 1
    assert (run.external_id, run.spool_path.name.startswith("job-7-")) == ("job-7", True)
    stored = service.runs[job_run.id]  # type: ignore[index]
    assert (stored["status"], stored["params"]) == ("succeeded", {"momentum": 0.5})
    assert service.steps(job_run.id, "loss") == [0, 1]  # type: ignore[arg-type]
    assert sum("POST /api/v1/runs ->" in line for line in service.log) == 1  # the job's own


def test_an_explicit_external_id_or_run_id_wins_over_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOMENTUM_RUN_ID", "99")
    assert Run(external_id="mine", spool_dir=tmp_path).attach_to is None
    assert Run(run_id=3, spool_dir=tmp_path).attach_to == 3
    monkeypatch.setenv("MOMENTUM_RUN_ID", "x")
    with pytest.raises(ValueError, match="MOMENTUM_RUN_ID='x' is not a run id"):
        Run(spool_dir=tmp_path)
