"""The reporter against the real service, stopped and restarted during a training run."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
import torch

from momentum.client import MomentumClient, ReporterOptions, ReporterStats, Run
from momentum.contract.training import TrainingConfig
from tests.support import ServerProcess, wait_until
from trainer.loop import RecordingSink, train

pytestmark = pytest.mark.e2e

STEPS = 600
CONFIG = TrainingConfig(
    optimizer="momentum",
    dataset="ravine",
    model="linear",
    steps=STEPS,
    log_every=1,
    eval_every=50,
    seed=3,
    device="cpu",
)
OPTIONS = ReporterOptions(
    flush_interval=0.05, backoff_base=0.01, backoff_max=0.2, close_timeout=60.0
)


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


class ScriptedSink:
    """Forwards to the run and keeps a copy; at chosen steps runs an action first."""

    def __init__(self, run: Run, script: Mapping[int, Callable[[], None]]) -> None:
        self.run, self.script, self.copy = run, script, RecordingSink()

    def log(self, step: int, values: Mapping[str, float]) -> None:
        if step in self.script:
            self.script[step]()
        self.copy.log(step, values)
        self.run.log(step, values)


def outage_script(server: ServerProcess, run: Run) -> dict[int, Callable[[], None]]:
    """Down from the start until step 100, up until 300, down again until 450."""
    failures_when_stopped: list[int] = []

    def stats() -> ReporterStats:
        assert run.reporter is not None
        return run.reporter.stats

    def spooled() -> bool:
        assert run.reporter is not None
        return run.reporter.outbox.spool.pending > 0

    def first_start() -> None:
        wait_until(spooled)
        assert run.id is None, "the run cannot exist yet: the service was never up"
        server.start()

    def outage() -> None:
        wait_until(lambda: stats().points_sent > 0)  # the first outage was replayed
        failures_when_stopped.append(stats().send_failures)
        server.stop()

    def recovery() -> None:
        wait_until(lambda: stats().send_failures > failures_when_stopped[0] and spooled())
        server.start()

    return {100: first_start, 300: outage, 450: recovery}


def assert_stored_as_logged(client: MomentumClient, run_id: int, copy: RecordingSink) -> None:
    """Each key holds exactly the steps and values that were logged: no gap, no repeat."""
    for key in ("loss", "lr", "grad_norm", "update_norm", "step_time", "val_loss"):
        steps, values = copy.series(key)
        history = client.get_history(run_id, key)
        assert history.total == len(steps), f"{key}: duplicated or missing points"
        assert (history.steps, history.values) == (steps, values), key


def test_every_point_arrives_once_across_service_outages(database_url: str, tmp_path: Path) -> None:
    with ServerProcess({"MOMENTUM_DATABASE_URL": database_url}) as server:
        run = Run(
            name="outage",
            params=CONFIG.model_dump(),
            url=server.url,
            spool_dir=tmp_path,
            options=OPTIONS,
        )
        sink = ScriptedSink(run, outage_script(server, run))
        with run:
            result = train(CONFIG, sink)
        assert result.steps_done == STEPS and run.unsent_path is None
        assert run.id is not None
        with MomentumClient(server.url) as client:
            stored = client.get_run(run.id)
            assert (stored.status, stored.diverged, stored.last_step) == ("succeeded", False, 599)
            assert_stored_as_logged(client, run.id, sink.copy)
    assert sink.copy.series("loss")[0] == list(range(STEPS))
    assert sink.copy.series("val_loss")[0] == [*range(0, STEPS, 50), STEPS - 1]
