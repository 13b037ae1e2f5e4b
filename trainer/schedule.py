"""The one step schedule every trainer runs, whatever its framework.

Step numbers start at 0. A step is *logged* every `log_every` steps, and always the
first and the final one: its trainer measures it and the sink gets those values (the
keys are the trainer's; see `trainer.loop`). Every `eval_every`-th step and the final
one are also *evaluated*: the validation values, measured on the weights after that
step's update, join the step's values. Steps that are neither only train.

A NaN or infinite loss is divergence: an outcome, not an error. It is logged as the float
it is, the result says `diverged=True`, and with `stop_on_divergence` training ends after
that step. It is noticed on logged steps only; a non-finite loss poisons the weights, so
it is still there at the next logged step.

A hand-written loop hands its steps to `StepSchedule.run`. A framework that owns the loop
(Keras's `fit`) calls `begin` and `end` around each of its steps instead, so the two
kinds cannot drift apart: the same keys on the same steps, by construction.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Unpack

from momentum.contract.training import TrainingConfig
from trainer.results import MetricSink, NullSink, RunHooks, TrainResult

Values = dict[str, float]


@dataclass
class Tally:
    """What the result reports, updated from the values as they are logged."""

    steps_done: int = 0
    final_loss: float = math.nan
    final_val_loss: float = math.nan
    best_val_accuracy: float | None = None
    diverged: bool = False

    def record(self, values: Mapping[str, float]) -> None:
        if "loss" in values:
            self.final_loss = values["loss"]
            self.diverged = self.diverged or not math.isfinite(values["loss"])
        if "val_loss" in values:
            self.final_val_loss = values["val_loss"]
        accuracy = values.get("val_accuracy")
        if accuracy is not None and not math.isnan(accuracy):
            self.best_val_accuracy = max(accuracy, self.best_val_accuracy or 0.0)

    def result(self, elapsed_s: float, cancelled: bool) -> TrainResult:
        return TrainResult(
            steps_done=self.steps_done,
            final_loss=self.final_loss,
            diverged=self.diverged,
            best_val_accuracy=self.best_val_accuracy,
            final_val_loss=self.final_val_loss,
            elapsed_s=elapsed_s,
            cancelled=cancelled,
        )


class StepSchedule:
    """Which steps log, which evaluate, which is the last; the running totals; the hooks.

    `should_stop` is asked before every step; when it answers True that step becomes the
    final one (logged and evaluated) and the result says `cancelled`. `on_progress` gets
    `(steps_done, config.steps)` on every logged step. Each of `check_steps` is logged
    and evaluated, then `on_check(step)` is asked, after the sink and `on_progress` had
    it; True makes that step the final one (and the result says `cancelled`): a run
    stopped early at a check ends exactly there. The clock starts here.
    """

    def __init__(
        self, config: TrainingConfig, sink: MetricSink | None = None, **hooks: Unpack[RunHooks]
    ) -> None:
        self.config = config
        self.sink: MetricSink = sink if sink is not None else NullSink()
        self.should_stop = hooks.get("should_stop")
        self.on_progress = hooks.get("on_progress")
        self.on_check = hooks.get("on_check")
        self.check_steps = frozenset(hooks.get("check_steps") or ())
        self.tally = Tally()
        self.cancelled = False
        self._final = False
        self._started = time.perf_counter()

    def begin(self, step: int) -> bool:
        """Start `step`; True when it is logged, so its trainer must measure it."""
        self.cancelled = self.should_stop is not None and self.should_stop()
        self._final = self.cancelled or step == self.config.steps - 1
        return self._final or step % self.config.log_every == 0 or step in self.check_steps

    def end(self, step: int, logged: Values | None, evaluate: Callable[[], Values]) -> bool:
        """Finish `step` with the values its trainer measured (None when not logged).

        Records them, evaluates when due, sends the step's values to the sink and reports
        progress. True when this was the final step.
        """
        config, tally = self.config, self.tally
        values: Values = {}
        if logged is not None:
            values = logged
            tally.record(values)
            self._final = self._final or (tally.diverged and config.stop_on_divergence)
        checked = step in self.check_steps
        if self._final or checked or step % config.eval_every == 0:
            evaluation = evaluate()
            values.update(evaluation)
            tally.record(evaluation)
        tally.steps_done = step + 1
        if values:
            self.sink.log(step, values)
        if self.on_progress is not None and "loss" in values:
            self.on_progress(tally.steps_done, config.steps)
        if checked and not self._final and self.on_check is not None and self.on_check(step):
            self.cancelled = self._final = True
        return self._final

    def run(
        self,
        *,
        logged_step: Callable[[], Values],
        plain_step: Callable[[], object],
        evaluate: Callable[[], Values],
    ) -> TrainResult:
        """Drive a hand-written loop: `logged_step` trains once and returns the step's
        values, `plain_step` only trains, `evaluate` measures on the validation set."""
        for step in range(self.config.steps):
            if self.begin(step):
                logged: Values | None = logged_step()
            else:
                plain_step()
                logged = None
            if self.end(step, logged, evaluate):
                break
        return self.result()

    def result(self) -> TrainResult:
        """How the run ended, timed from this schedule's creation."""
        return self.tally.result(time.perf_counter() - self._started, self.cancelled)


__all__ = ["StepSchedule", "Tally", "Values"]
