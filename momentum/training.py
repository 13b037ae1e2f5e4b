"""What training here and on a worker share: the sink that reports a trainer's metrics.

A library module (`momentum.worker` and `momentum train` both use it); it imports
neither the trainer nor rich, which the callers bring.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from momentum.client import Run


class ReportingSink:
    """The trainer's MetricSink: each logged step goes to the run, and the bar shows the loss."""

    REFRESH_S = 0.1  # redrawing on every step would cost more than the step

    def __init__(self, run: Run, progress: Progress | None, task: TaskID | None) -> None:
        self.run, self.progress, self.task = run, progress, task
        self._drawn_at = 0.0

    def log(self, step: int, values: Mapping[str, float]) -> None:
        self.run.log(step, values)
        now = time.monotonic()
        if (
            self.progress is not None
            and self.task is not None
            and now - self._drawn_at > self.REFRESH_S
        ):
            self._drawn_at = now
            loss = values.get("loss")
            shown = f"{loss:.4g}" if loss is not None else "-"
            self.progress.update(self.task, completed=step + 1, loss=shown)
