"""What every trainer shares, whatever its framework: where metrics go and how a run ended.

Imports neither torch nor keras, so the NumPy trainer stays pure NumPy.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from momentum.contract.training import TrainingConfig


class MetricSink(Protocol):
    """Receives the values logged at one step; an HTTP reporter is one implementation."""

    def log(self, step: int, values: Mapping[str, float]) -> None: ...


class NullSink:
    """Discards everything (training without monitoring)."""

    def log(self, step: int, values: Mapping[str, float]) -> None:
        return None


@dataclass
class RecordingSink:
    """Keeps every logged value in memory, for tests and notebooks."""

    rows: list[tuple[int, dict[str, float]]] = field(default_factory=list)

    def log(self, step: int, values: Mapping[str, float]) -> None:
        self.rows.append((step, dict(values)))

    def series(self, key: str) -> tuple[list[int], list[float]]:
        """Steps and values of one metric key, in logging order."""
        pairs = [(step, values[key]) for step, values in self.rows if key in values]
        return [step for step, _ in pairs], [value for _, value in pairs]


@dataclass(frozen=True)
class TrainResult:
    """How a run ended. `final_loss` is the training loss logged at the last step done."""

    steps_done: int
    final_loss: float
    diverged: bool
    best_val_accuracy: float | None  # None for regression
    final_val_loss: float
    elapsed_s: float
    cancelled: bool


class Trainer(Protocol):
    """`train(config, sink, should_stop=..., on_progress=...)` of any framework."""

    def __call__(
        self,
        config: TrainingConfig,
        sink: MetricSink | None = None,
        *,
        should_stop: Callable[[], bool] | None = None,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> TrainResult: ...


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


def total_norm(norms: list[float]) -> float:
    """The 2-norm of all tensors together, from the 2-norm of each."""
    return math.sqrt(math.fsum(n * n for n in norms))


__all__ = [
    "MetricSink",
    "NullSink",
    "RecordingSink",
    "Tally",
    "TrainResult",
    "Trainer",
    "total_norm",
]


def run_schedule(
    config: TrainingConfig,
    sink: MetricSink,
    *,
    logged_step: Callable[[], dict[str, float]],
    plain_step: Callable[[], object],
    evaluate: Callable[[], dict[str, float]],
    should_stop: Callable[[], bool] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> TrainResult:
    """The step schedule every hand-written loop shares, whatever the framework: which
    steps log (`logged_step` trains and returns the step's values), which only train,
    which evaluate; divergence and `should_stop` make a step the final one (logged and
    evaluated); `on_progress` gets `(steps_done, config.steps)` on every logged step."""
    tally, cancelled = Tally(), False
    started = time.perf_counter()
    for step in range(config.steps):
        cancelled = should_stop is not None and should_stop()
        final = cancelled or step == config.steps - 1
        values: dict[str, float] = {}
        if final or step % config.log_every == 0:
            values = logged_step()
            tally.record(values)
            final = final or (tally.diverged and config.stop_on_divergence)
        else:
            plain_step()
        if final or step % config.eval_every == 0:
            evaluation = evaluate()
            values.update(evaluation)
            tally.record(evaluation)
        tally.steps_done = step + 1
        if values:
            sink.log(step, values)
        if on_progress is not None and "loss" in values:
            on_progress(tally.steps_done, config.steps)
        if final:
            break
    return tally.result(time.perf_counter() - started, cancelled)
