"""Stopping early, the worker's side: check steps in the schedule, `Run.flush`, and the
built-in worker flushing and heartbeating at a check step, against the real app
in-process (TestClient) with the real trainer, so a stop decided there ends the job at
exactly that step. The real-process end-to-end tests are in test_early_stop_e2e.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from momentum.client import MomentumClient
from momentum.contract import EarlyStopped, TrainingConfig
from momentum.worker import Outcome, Worker, WorkerOptions
from service import Settings, create_app
from service.models import Job, Series
from service.storage import early_stop
from tests.fake_service import FakeService, make_run
from tests.jobs_support import job, run_of, submit
from trainer.schedule import StepSchedule

# The client passes explicit timeouts, which Starlette's TestClient ignores (and says so).
pytestmark = pytest.mark.filterwarnings("ignore:You should not use the 'timeout' argument")
CHECK_STEP = 7
STEPS = 40


@pytest.mark.parametrize("stop_at_check", [False, True])
def test_check_steps_are_logged_and_evaluated_and_can_end_the_run(stop_at_check: bool) -> None:
    config = TrainingConfig(dataset="ravine", model="linear", steps=20, log_every=5, eval_every=10)
    logged: list[tuple[int, list[str]]] = []
    asked: list[int] = []

    class Sink:
        def log(self, step: int, values: Any) -> None:
            logged.append((step, sorted(values)))

    def on_check(step: int) -> bool:
        asked.append(step)
        return stop_at_check

    schedule = StepSchedule(config, Sink(), check_steps=[7, 12], on_check=on_check)
    result = schedule.run(
        logged_step=lambda: {"loss": 1.0}, plain_step=lambda: None, evaluate=lambda: {"val": 0.5}
    )
    steps = [step for step, _ in logged]
    if stop_at_check:
        assert (asked, steps, result.steps_done, result.cancelled) == ([7], [0, 5, 7], 8, True)
    else:
        assert asked == [7, 12] and steps == [0, 5, 7, 10, 12, 15, 19]
        assert (result.steps_done, result.cancelled) == (20, False)
    assert dict(logged)[7] == ["loss", "val"]  # a check step is evaluated too


def test_flush_returns_once_the_service_stored_every_point(tmp_path: Path) -> None:
    service = FakeService()
    # The encoder would otherwise wake only every minute: only `flush` makes it send now.
    with make_run(service, tmp_path, flush_interval=60.0) as run:
        for step in range(30):
            run.log(step, loss=1.0 / (step + 1))
        assert run.flush(timeout=20) is True
        assert run.id is not None and service.steps(run.id, "loss") == list(range(30))
        service.down = True
        run.log(30, loss=0.1)
        assert run.flush(timeout=0.3) is False  # not delivered: it stays queued
        service.down = False
    assert service.steps(run.id, "loss") == list(range(31))


@pytest.fixture
def app_client(settings: Settings) -> Iterator[TestClient]:
    fast = settings.model_copy(update={"lease_seconds": 3.0, "reaper_interval_s": 60.0})
    with TestClient(create_app(fast)) as client:
        yield client


class QuietDisplay:
    def job_started(self, lease: Any) -> tuple[Any, Any]:
        return None, None

    def job_progress(self, lease: Any, step: int, total: int) -> None:
        return None

    def job_ended(self, lease: Any, outcome: Outcome, detail: str) -> None:
        self.ended = (outcome, detail)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_worker_flushes_and_heartbeats_at_a_check_step_and_stops_exactly_there(
    app_client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sweep's rung, as the service's hooks see it: the claim hands out the check step;
    the heartbeat at it finds the run's points up to that step stored, and stops the job."""
    seen: list[tuple[int | None, int]] = []  # (heartbeat progress, last stored step)

    def judge(session: Session, job_row: Job) -> None:
        stored = session.scalar(
            select(func.max(Series.last_step)).where(Series.run_id == job_row.run_id)
        )
        seen.append((job_row.progress_step, -1 if stored is None else int(stored)))
        if stored is not None and stored >= CHECK_STEP:
            verdict = EarlyStopped(step=CHECK_STEP, rule="asha", reason="stopped at the rung")
            early_stop.stop_job(session, job_row, verdict)

    monkeypatch.setattr(early_stop, "check_steps_for", lambda session, job_row: [CHECK_STEP])
    monkeypatch.setattr(early_stop, "judge_at_heartbeat", judge)
    config = {"dataset": "ravine", "model": "linear", "steps": STEPS, "eval_every": 100}
    created = submit(app_client, config={**config, "log_every": 5, "device": "cpu"})
    client = MomentumClient("http://testserver", "", http=app_client)
    options = WorkerOptions(worker_id="w1", device="cpu", once=True, spool_dir=tmp_path)
    display = QuietDisplay()
    Worker(client, options, display).serve()

    # The check step's heartbeat came after its points were stored, before the next step.
    assert (CHECK_STEP + 1, CHECK_STEP) in seen
    done = job(app_client, created["id"])
    assert (done["status"], done["early_stopped"]["step"]) == ("succeeded", CHECK_STEP)
    assert (done["progress_step"], done["progress_total"]) == (CHECK_STEP + 1, STEPS)
    assert done["summary"]["stopped_early"] is True
    assert done["summary"]["steps_done"] == CHECK_STEP + 1
    run = run_of(app_client, created["id"])
    assert (run["status"], run["last_step"]) == ("succeeded", CHECK_STEP)
    assert run["tags"]["momentum.early_stopped"] == "stopped at the rung"
    history = app_client.get(f"/api/v1/runs/{run['id']}/metrics/loss").json()
    assert history["steps"] == [0, 5, CHECK_STEP]  # logged every 5, and at the check
    val = app_client.get(f"/api/v1/runs/{run['id']}/metrics/val_loss").json()
    assert val["steps"] == [0, CHECK_STEP]  # evaluated at the check (and step 0)
    assert display.ended[0] is Outcome.completed and "stopped early" in display.ended[1]
