"""The step schedule every trainer shares: cadence, the final step, divergence, the hooks.

The first tests drive `StepSchedule` with fake steps; the last runs the three frameworks
on one config and checks they log the same keys on the same steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Unpack

import pytest

from momentum.contract.training import TrainingConfig
from trainer.frameworks import trainer_for
from trainer.results import RecordingSink, RunHooks, TrainResult
from trainer.schedule import StepSchedule, Values


def config(**fields: object) -> TrainingConfig:
    base: dict[str, object] = {"dataset": "ravine", "model": "linear", "device": "cpu"}
    return TrainingConfig(**{**base, **fields})  # type: ignore[arg-type]


class FakeSteps:
    """Counts the steps a schedule runs; logged step k has loss `losses[k]` (default 1)."""

    def __init__(self, losses: dict[int, float] | None = None) -> None:
        self.losses = losses or {}
        self.step = 0
        self.plain = 0

    def logged(self) -> Values:
        self.step += 1
        return {"loss": self.losses.get(self.step - 1, 1.0)}

    def plain_step(self) -> None:
        self.step += 1
        self.plain += 1

    def evaluate(self) -> Values:
        return {"val_loss": 2.0}


def stop_after(asks: int) -> tuple[list[int], Callable[[], bool]]:
    """A `should_stop` that answers True from its (asks + 1)-th call on, and its calls."""
    asked: list[int] = []

    def should_stop() -> bool:
        asked.append(1)
        return len(asked) > asks

    return asked, should_stop


def run(
    cfg: TrainingConfig, steps: FakeSteps, **hooks: Unpack[RunHooks]
) -> tuple[TrainResult, list[tuple[int, list[str]]]]:
    sink = RecordingSink()
    schedule = StepSchedule(cfg, sink, **hooks)
    result = schedule.run(
        logged_step=steps.logged, plain_step=steps.plain_step, evaluate=steps.evaluate
    )
    return result, [(step, sorted(values)) for step, values in sink.rows]


def test_logs_every_nth_step_evaluates_every_mth_and_always_the_last() -> None:
    progress: list[tuple[int, int]] = []
    steps = FakeSteps()
    result, rows = run(
        config(steps=12, log_every=4, eval_every=3),
        steps,
        on_progress=lambda done, total: progress.append((done, total)),
    )
    assert rows == [
        (0, ["loss", "val_loss"]),
        (3, ["val_loss"]),  # evaluated, not logged: only the validation values
        (4, ["loss"]),
        (6, ["val_loss"]),
        (8, ["loss"]),
        (9, ["val_loss"]),
        (11, ["loss", "val_loss"]),
    ]
    assert steps.plain == 12 - 4 and steps.step == 12
    assert progress == [(1, 12), (5, 12), (9, 12), (12, 12)]  # on logged steps only
    assert (result.steps_done, result.final_loss, result.final_val_loss) == (12, 1.0, 2.0)
    assert not result.cancelled and not result.diverged


def test_should_stop_makes_that_step_the_last_logged_and_evaluated() -> None:
    asked, should_stop = stop_after(7)
    result, rows = run(config(steps=100, log_every=5), FakeSteps(), should_stop=should_stop)
    assert rows[-1] == (7, ["loss", "val_loss"])
    assert result.cancelled and result.steps_done == 8 and len(asked) == 8


@pytest.mark.parametrize("stop", [True, False])
def test_divergence_ends_the_run_only_when_asked(stop: bool) -> None:
    steps = FakeSteps({10: math.nan})
    result, rows = run(config(steps=30, log_every=5, stop_on_divergence=stop), steps)
    assert result.diverged and math.isnan(result.final_loss) == stop
    assert result.steps_done == (11 if stop else 30)
    assert rows[-1] == ((10, ["loss", "val_loss"]) if stop else (29, ["loss", "val_loss"]))


def test_begin_and_end_drive_a_loop_someone_else_owns() -> None:
    """What Keras's `fit` does through its callback: the same rows as `run`."""
    cfg = config(steps=23, log_every=5, eval_every=10)
    steps, sink = FakeSteps(), RecordingSink()
    schedule = StepSchedule(cfg, sink)
    for step in range(cfg.steps):
        logged = steps.logged() if schedule.begin(step) else None
        if schedule.end(step, logged, steps.evaluate):
            break
    _, expected = run(cfg, FakeSteps())
    assert [(step, sorted(values)) for step, values in sink.rows] == expected
    assert schedule.result().steps_done == 23


SAME_CONFIG = {
    "blobs": {"dataset": "blobs", "model": "logreg", "steps": 23, "log_every": 5},
    "ravine": {"dataset": "ravine", "model": "linear", "steps": 12, "log_every": 4},
}


@pytest.mark.parametrize("name", sorted(SAME_CONFIG))
def test_three_frameworks_log_the_same_keys_on_the_same_steps(name: str) -> None:
    """Keras alone leaves out `grad_norm`: `fit` does not expose the gradients."""
    fields = {**SAME_CONFIG[name], "eval_every": 3, "optimizer": "momentum", "batch_size": 32}
    logged: dict[str, list[tuple[int, list[str]]]] = {}
    progress: dict[str, list[int]] = {}
    for framework in ("torch", "numpy", "keras"):
        sink, done = RecordingSink(), progress.setdefault(framework, [])
        hooks: RunHooks = {
            "should_stop": stop_after(9)[1],
            "on_progress": lambda step, _total, done=done: done.append(step),
        }
        result = trainer_for(framework)(config(framework=framework, **fields), sink, **hooks)
        assert result.cancelled and result.steps_done == 10, framework
        logged[framework] = [(s, sorted(set(v) - {"grad_norm"})) for s, v in sink.rows]
    assert logged["torch"] == logged["numpy"] == logged["keras"]
    assert progress["torch"] == progress["numpy"] == progress["keras"]
    assert [step for step, _ in logged["torch"]][-1] == 9  # the cancelled step is the last
