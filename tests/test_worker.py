"""The worker against the real app in-process (TestClient is an httpx.Client), trainer faked.

The end-to-end tests run real worker processes; these reach the paths that are hard to
provoke from outside: a training error, a lease lost mid-job, a stop during a claim.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from momentum.client import MomentumClient
from momentum.contract import JobFail
from momentum.worker import Outcome, Worker, WorkerOptions, _fail_text, _summary
from service import Settings, create_app
from tests.jobs_support import claim, expire_lease, job, run_of, submit
from tests.support import wait_until
from trainer.loop import TrainResult

SQLITE = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
# The client passes explicit timeouts, which Starlette's TestClient ignores (and says so).
pytestmark = pytest.mark.filterwarnings("ignore:You should not use the 'timeout' argument")


class QuietDisplay:
    def __init__(self) -> None:
        self.ended: list[tuple[int, Outcome]] = []

    def job_started(self, lease: Any) -> tuple[Any, Any]:
        return None, None

    def job_progress(self, lease: Any, step: int, total: int) -> None:
        return None

    def job_ended(self, lease: Any, outcome: Outcome, detail: str) -> None:
        self.ended.append((lease.id, outcome))


@pytest.fixture
def app_client(settings: Settings) -> Iterator[TestClient]:
    fast = settings.model_copy(update={"lease_seconds": 1.0, "reaper_interval_s": 60.0})
    with TestClient(create_app(fast)) as client:
        yield client


def make_worker(app_client: TestClient, tmp_path: Path) -> tuple[Worker, QuietDisplay]:
    client = MomentumClient("http://testserver", "", http=app_client)
    options = WorkerOptions(worker_id="w1", device="cpu", once=True, spool_dir=tmp_path)
    display = QuietDisplay()
    return Worker(client, options, display), display


def fake_train(body: Callable[..., None], steps_done: int = 3) -> Callable[..., TrainResult]:
    def train(config: Any, sink: Any, *, should_stop: Any, on_progress: Any) -> TrainResult:
        body(sink, should_stop)
        return TrainResult(steps_done, 0.5, False, None, 0.6, 0.1, cancelled=should_stop())

    return train


@SQLITE
def test_a_training_error_fails_the_job_with_its_text(
    app_client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(sink: Any, should_stop: Any) -> None:
        sink.log(0, {"loss": 1.0})
        raise RuntimeError("the loss function exploded")

    monkeypatch.setattr("trainer.loop.train", fake_train(explode))
    created = submit(app_client)
    worker, display = make_worker(app_client, tmp_path)
    worker.serve()
    failed = job(app_client, created["id"])
    assert (failed["status"], failed["error"]) == (
        "failed",
        "RuntimeError: the loss function exploded",
    )
    assert run_of(app_client, created["id"])["status"] == "failed"
    assert display.ended == [(created["id"], Outcome.failed)]


@SQLITE
def test_a_lost_lease_stops_training_and_reports_nothing(
    app_client: TestClient, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = submit(app_client)
    taken = threading.Event()

    def train_until_stopped(sink: Any, should_stop: Any) -> None:
        sink.log(0, {"loss": 1.0})

        # Meanwhile the lease lapses and another worker takes the job. The worker's own
        # heartbeat may renew the lapsed lease between the two steps: then again.
        def lapse_and_take() -> bool:
            expire_lease(engine, created["id"])
            return claim(app_client, "w2") is not None

        wait_until(lapse_and_take, timeout=30)
        taken.set()
        wait_until(should_stop, timeout=5)  # the next heartbeat answers 409

    monkeypatch.setattr("trainer.loop.train", fake_train(train_until_stopped))
    worker, display = make_worker(app_client, tmp_path)
    worker.serve()
    assert taken.is_set()
    now = job(app_client, created["id"])
    assert (now["status"], now["lease_owner"], now["attempts"]) == ("running", "w2", 2)
    assert run_of(app_client, created["id"])["status"] == "running"  # w1 wrote no status
    assert display.ended == [(created["id"], Outcome.lost)]


@SQLITE
def test_completion_reports_a_summary_and_the_run_gets_the_points(
    app_client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def three_steps(sink: Any, should_stop: Any) -> None:
        for step in range(3):
            sink.log(step, {"loss": 1.0 / (step + 1)})

    monkeypatch.setattr("trainer.loop.train", fake_train(three_steps))
    created = submit(app_client)
    worker, _ = make_worker(app_client, tmp_path)
    worker.serve()
    done = job(app_client, created["id"])
    assert done["status"] == "succeeded" and done["summary"]["steps_done"] == 3
    run = run_of(app_client, created["id"])
    assert (run["status"], run["last_step"], run["external_id"]) == (
        "succeeded",
        2,
        f"job-{created['id']}",
    )


@SQLITE
def test_a_stop_during_the_claim_hands_the_job_straight_back(
    app_client: TestClient, tmp_path: Path
) -> None:
    created = submit(app_client)
    worker, display = make_worker(app_client, tmp_path)
    claim_once = worker.claim

    def claim_then_stop() -> Any:
        lease = claim_once()
        worker.stop()  # SIGTERM arrives while the claim's answer is on its way
        return lease

    worker.claim = claim_then_stop  # type: ignore[method-assign]
    worker.serve()
    back = job(app_client, created["id"])
    assert (back["status"], back["attempts"], back["lease_lapses"]) == ("queued", 1, 0)
    assert display.ended == []


def test_the_summary_encodes_non_finite_values_as_the_contracts_strings() -> None:
    result = TrainResult(5, math.nan, True, None, math.inf, 1.23456, cancelled=False)
    assert _summary(result) == {
        "steps_done": 5,
        "final_loss": "NaN",
        "final_val_loss": "Infinity",
        "best_val_accuracy": None,
        "elapsed_s": 1.235,
    }


def test_any_training_error_becomes_a_failure_the_contract_takes() -> None:
    for message in ("", "a\0b", "x" * 20_000):
        body = JobFail(lease_token="t", error=_fail_text(message))
        assert 1 <= len(body.error) <= 10_000 and "\0" not in body.error
