"""The callback through which a Keras job's `model.fit` runs on the shared step schedule.

`fit` owns the loop, so each batch is one step between `StepSchedule.begin` and
`StepSchedule.end`. Imports Keras (through `momentum.keras`), so `trainer.keras_loop`
imports this module only inside `train`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from momentum.keras import MomentumCallback
from trainer.datasets import ArrayDataset
from trainer.keras_loop import evaluate, to_numpy
from trainer.results import total_norm
from trainer.schedule import StepSchedule, Values


class JobCallback(MomentumCallback):
    """The batch values of `MomentumCallback` plus what a job logs, on the job's schedule."""

    def __init__(self, schedule: StepSchedule, data: ArrayDataset) -> None:
        super().__init__(schedule.sink)
        self.schedule, self.data = schedule, data
        self._before: list[np.ndarray] | None = None  # the weights, before a logged step only
        self._started = 0.0

    def on_train_batch_begin(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        logged = self.schedule.begin(self.step)
        self._before = [w.copy() for w in self._weights()] if logged else None
        self._started = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        step_time = time.perf_counter() - self._started
        step = self.step
        self.step += 1
        batch_values = self.batch_values(logs)  # every batch: the running totals move on
        logged: Values | None = None
        if self._before is not None:
            logged = {**batch_values, "lr": self._lr(), "step_time": step_time}
            logged["update_norm"] = self._update_norm(self._before)
        if self.schedule.end(step, logged, self.evaluate):
            self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        return None  # the schedule says when to evaluate, in on_train_batch_end

    def evaluate(self) -> Values:
        return evaluate(self.model, self.data)

    def _update_norm(self, before: list[np.ndarray]) -> float:
        after = self._weights()
        return total_norm(
            [float(np.linalg.norm(a - b)) for a, b in zip(after, before, strict=True)]
        )

    def _weights(self) -> list[np.ndarray]:
        return [to_numpy(w) for w in self.model.trainable_variables]

    def _lr(self) -> float:
        return float(self.model.optimizer.learning_rate)


__all__ = ["JobCallback"]
