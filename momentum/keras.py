"""Keras support: `MomentumCallback` streams a Keras `fit` to Momentum Monitor.

    import momentum
    from momentum.keras import MomentumCallback

    with momentum.Run(name="keras-mu0.9", params={"momentum": 0.9}) as run:
        model.fit(x, y, epochs=5, validation_split=0.2, callbacks=[MomentumCallback(run)])

Keras 3 runs on several backends. When none is chosen (`KERAS_BACKEND` unset), importing
this module picks PyTorch, which the `trainer` extra already installs: no TensorFlow
needed. Keras is an extra, `pip install 'momentum-monitor[keras]'`; without it, importing
this module raises a `ModuleNotFoundError` that says so.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Protocol

KERAS_MISSING = (
    "Keras support needs Keras 3, which is not installed: pip install 'momentum-monitor[keras]'"
)

os.environ.setdefault("KERAS_BACKEND", "torch")
try:
    import keras
except ImportError as exc:  # the extra is missing, or a backend it needs
    raise ModuleNotFoundError(f"{KERAS_MISSING} ({exc})", name="keras") from exc


class Logger(Protocol):
    """Where the points go: a `momentum.Run`, or any object with the same `log`."""

    def log(self, step: int, values: Mapping[str, float], /) -> Any: ...


class MomentumCallback(keras.callbacks.Callback):
    """Logs every training batch and every epoch's validation metrics of `fit` to a run.

    Per batch, at step = the global batch index (0, 1, 2, … across epochs, plus
    `initial_step`): `loss` and each compiled metric, as **the batch's own value**, not
    the running epoch mean that Keras puts in `logs`. For mean metrics (the loss,
    `accuracy`, `mae`, …) the callback reads the metric's running total and count and
    takes the difference since the previous batch, which is that batch's mean exactly.
    A metric that is not a mean (`AUC`, `Precision`, …) has no per-batch value, and is
    sent as Keras reports it: accumulated over the epoch so far.

    Per epoch, at the step of the epoch's last batch: the `val_*` values of `logs`
    (computed by Keras over the whole validation set).

    `log_every=N` sends every N-th batch (steps 0, N, 2N, …); every batch is still read.
    """

    def __init__(self, run: Logger, *, log_every: int = 1, initial_step: int = 0) -> None:
        super().__init__()
        if log_every < 1:
            raise ValueError(f"log_every must be >= 1, got {log_every}")
        self.run = run
        self.log_every = log_every
        self.step = initial_step  # the global index of the next batch
        self._means: dict[str, Any] | None = None
        self._previous: dict[str, tuple[float, float]] = {}

    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        self._means = None  # compile() may have been called again since the last fit

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        self._previous.clear()  # Keras resets its metrics at the start of every epoch

    def on_train_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        step = self.step
        self.step += 1
        values = self.batch_values(logs)
        if step % self.log_every == 0 and values:
            self.run.log(step, values)

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        values = {
            key: value
            for key, value in _numbers(logs).items()
            if key.startswith("val_") and key != "val_learning_rate"
        }
        if values and self.step > 0:
            self.run.log(self.step - 1, values)

    def batch_values(self, logs: Mapping[str, Any] | None) -> dict[str, float]:
        """This batch's values by key: exact batch means where Keras keeps a mean."""
        values = _numbers(logs)
        values.pop("learning_rate", None)  # not a metric of the batch
        for name, metric in self._mean_metrics().items():
            # float() of a scalar variable: no trip through NumPy's array protocol
            total, count = float(metric.total), float(metric.count)
            last_total, last_count = self._previous.get(name, (0.0, 0.0))
            if count < last_count:  # reset behind our back (a new epoch, reset_metrics())
                last_total, last_count = 0.0, 0.0
            self._previous[name] = (total, count)
            if name in values and count > last_count:
                values[name] = (total - last_total) / (count - last_count)
        return values

    def _mean_metrics(self) -> dict[str, Any]:
        """The model's metrics that are running means, by name (looking inside containers)."""
        if self._means is None:
            found: dict[str, Any] = {}
            pending = list(self.model.metrics)
            while pending:
                metric = pending.pop(0)
                if isinstance(metric, keras.metrics.Mean):
                    found.setdefault(metric.name, metric)
                else:
                    pending.extend(getattr(metric, "metrics", None) or [])
            self._means = found
        return self._means


def _numbers(logs: Mapping[str, Any] | None) -> dict[str, float]:
    values = {}
    for key, value in (logs or {}).items():
        try:
            values[key] = float(value)
        except (TypeError, ValueError):
            continue  # not a scalar (Keras logs only numbers, but a custom callback may not)
    return values


__all__ = ["KERAS_MISSING", "Logger", "MomentumCallback", "keras"]
