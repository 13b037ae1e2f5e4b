"""What every trainer shares, whatever its framework: where metrics go and how a run ended.

Imports neither torch nor keras, so the NumPy trainer stays pure NumPy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypedDict, Unpack

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


class RunHooks(TypedDict, total=False):
    """How a caller follows and stops a run: `train(config, sink, **hooks)` of any framework
    passes them to `trainer.schedule.StepSchedule`, which says when each is called."""

    should_stop: Callable[[], bool] | None
    on_progress: Callable[[int, int], None] | None
    # Steps logged and evaluated whatever the schedule, after each of which `on_check`
    # is called (a job's worker flushes and heartbeats there); True ends the run there.
    check_steps: Collection[int] | None
    on_check: Callable[[int], bool] | None


class Trainer(Protocol):
    """`train(config, sink, should_stop=..., on_progress=...)` of any framework."""

    def __call__(
        self, config: TrainingConfig, sink: MetricSink | None = None, **hooks: Unpack[RunHooks]
    ) -> TrainResult: ...


def total_norm(norms: list[float]) -> float:
    """The 2-norm of all tensors together, from the 2-norm of each."""
    return math.sqrt(math.fsum(n * n for n in norms))


__all__ = [
    "MetricSink",
    "NullSink",
    "RecordingSink",
    "RunHooks",
    "TrainResult",
    "Trainer",
    "total_norm",
]
