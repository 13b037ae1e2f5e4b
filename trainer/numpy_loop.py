"""The NumPy trainer (`framework: numpy`): the update rules and gradients written out by hand.

For people whose momentum code is a few lines over arrays. Models: `linear` (least
squares on `ravine`) and `logreg` (softmax regression on `blobs`, `spirals`, `digits`).
Each optimizer is a plain function that updates the weights in place; in float64 they
trace the same numbers as the PyTorch optimizers of the same name (a test checks it):

    sgd           w ← w − η·g
    momentum      v ← μ·v − η·g;  w ← w + v             (classical; Keras's SGD(momentum=μ))
    sgd_momentum  b ← μ·b + g;    w ← w − η·b           (PyTorch's SGD(momentum=μ))
    nesterov      v ← μ·v − η·g;  w ← w + μ·v − η·g     (PyTorch's SGD(nesterov=True))

Weight decay is coupled L2, as in PyTorch: g ← g + wd·w before the rule. The data, the
initial weights and the minibatch order come from `trainer.datasets`, the same as the
PyTorch and Keras trainers; the logged keys are the PyTorch loop's (see `trainer.loop`),
on the schedule every framework shares (`trainer.schedule`). Imports NumPy only: no
torch, no keras.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol, Unpack

import numpy as np

from momentum.contract.training import TrainingConfig
from trainer.datasets import ArrayDataset, BatchOrder, DataInfo, arrays_for, linear_init
from trainer.results import MetricSink, RunHooks, TrainResult, total_norm
from trainer.schedule import StepSchedule

UpdateRule = Callable[[np.ndarray, np.ndarray, np.ndarray, float, float], None]


# --- update rules: (weights, gradient, buffer, lr, mu), all in place ---------------------


def sgd(w: np.ndarray, g: np.ndarray, _buffer: np.ndarray, lr: float, _mu: float) -> None:
    """Plain gradient descent: w ← w − η·g (μ is ignored)."""
    w -= lr * g


def momentum(w: np.ndarray, g: np.ndarray, v: np.ndarray, lr: float, mu: float) -> None:
    """Classical (heavy-ball) momentum: v ← μ·v − η·g; w ← w + v."""
    v *= mu
    v -= lr * g
    w += v


def sgd_momentum(w: np.ndarray, g: np.ndarray, b: np.ndarray, lr: float, mu: float) -> None:
    """PyTorch's form: b ← μ·b + g; w ← w − η·b (the same weights as `momentum` for a fixed η)."""
    b *= mu
    b += g
    w -= lr * b


def nesterov(w: np.ndarray, g: np.ndarray, v: np.ndarray, lr: float, mu: float) -> None:
    """Nesterov momentum: v ← μ·v − η·g; w ← w + μ·v − η·g (a look-ahead of one more μ·v)."""
    v *= mu
    v -= lr * g
    w += mu * v - lr * g


RULES: dict[str, UpdateRule] = {
    "sgd": sgd,
    "momentum": momentum,
    "sgd_momentum": sgd_momentum,
    "nesterov": nesterov,
}


# --- models: forward pass, loss and gradients -------------------------------------------


class Model(Protocol):
    params: list[np.ndarray]

    def forward(self, x: np.ndarray) -> np.ndarray: ...

    def loss(self, outputs: np.ndarray, y: np.ndarray) -> float: ...

    def gradients(self, x: np.ndarray, outputs: np.ndarray, y: np.ndarray) -> list[np.ndarray]: ...


class LinearRegression:
    """outputs = x·wᵀ (no bias); loss = mean((outputs − y)²); ∂loss/∂w = 2/n·(outputs − y)ᵀ·x."""

    def __init__(self, weight: np.ndarray) -> None:
        self.params = [weight]  # (1, input_dim), like torch's nn.Linear

    def forward(self, x: np.ndarray) -> np.ndarray:
        return x @ self.params[0].T

    def loss(self, outputs: np.ndarray, y: np.ndarray) -> float:
        return mean_squared_error(outputs, y)

    def gradients(self, x: np.ndarray, outputs: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
        residual = outputs - y
        return [(2.0 / residual.size) * (residual.T @ x)]


class SoftmaxRegression:
    """logits = x·Wᵀ + b; loss = mean cross-entropy; ∂loss/∂logits = (softmax − onehot)/n."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray) -> None:
        self.params = [weight, bias]  # (classes, input_dim), (classes,)

    def forward(self, x: np.ndarray) -> np.ndarray:
        return x @ self.params[0].T + self.params[1]

    def loss(self, outputs: np.ndarray, y: np.ndarray) -> float:
        return cross_entropy(outputs, y)

    def gradients(self, x: np.ndarray, outputs: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
        delta = np.exp(_log_softmax(outputs))
        delta[np.arange(len(y)), y] -= 1.0
        delta /= len(y)
        return [delta.T @ x, delta.sum(axis=0)]


def mean_squared_error(outputs: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean((outputs - y) ** 2))


def cross_entropy(logits: np.ndarray, y: np.ndarray) -> float:
    """Mean cross-entropy of integer labels under softmax(logits)."""
    return float(-np.mean(_log_softmax(logits)[np.arange(len(y)), y]))


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def build_model(config: TrainingConfig, info: DataInfo) -> Model:
    """`linear` or `logreg`, starting from the initial weights every framework shares."""
    if config.model == "linear":
        weight, _ = linear_init(config.seed, info.input_dim, 1, bias=False)
        return LinearRegression(weight)
    if config.model == "logreg" and info.num_classes is not None:
        weight, bias = linear_init(config.seed, info.input_dim, info.num_classes, bias=True)
        assert bias is not None
        return SoftmaxRegression(weight, bias)
    raise ValueError(f"the NumPy trainer has no model {config.model!r} for {info.name!r}")


# --- training ------------------------------------------------------------------------------


def train_step(
    model: Model, rule: UpdateRule, buffers: list[np.ndarray], config: TrainingConfig,
    x: np.ndarray, y: np.ndarray,
) -> tuple[float, np.ndarray, list[np.ndarray]]:  # fmt: skip
    """One update on one batch; returns the batch loss, the outputs and the gradients."""
    outputs = model.forward(x)
    loss = model.loss(outputs, y)
    grads = model.gradients(x, outputs, y)
    for w, g, buffer in zip(model.params, grads, buffers, strict=True):
        if config.weight_decay:
            g = g + config.weight_decay * w
        rule(w, g, buffer, config.lr, config.momentum)
    return loss, outputs, grads


def evaluate(model: Model, x: np.ndarray, y: np.ndarray, classification: bool) -> dict[str, float]:
    """Validation loss (and accuracy for classifiers) over the whole set."""
    outputs = model.forward(x)
    values = {"val_loss": model.loss(outputs, y)}
    if classification:
        values["val_accuracy"] = float(np.mean(outputs.argmax(axis=1) == y))
    return values


def _logged_step(
    model: Model, rule: UpdateRule, buffers: list[np.ndarray], config: TrainingConfig,
    x: np.ndarray, y: np.ndarray, classification: bool,
) -> dict[str, float]:  # fmt: skip
    before = [w.copy() for w in model.params]
    started = time.perf_counter()
    loss, outputs, grads = train_step(model, rule, buffers, config, x, y)
    step_time = time.perf_counter() - started
    values = {
        "loss": loss,
        "lr": config.lr,
        "grad_norm": total_norm([float(np.linalg.norm(g)) for g in grads]),
        "update_norm": total_norm(
            [float(np.linalg.norm(w - b)) for w, b in zip(model.params, before, strict=True)]
        ),
        "step_time": step_time,
    }
    if classification:
        values["accuracy"] = float(np.mean(outputs.argmax(axis=1) == y))
    return values


def train(
    config: TrainingConfig,
    sink: MetricSink | None = None,
    *,
    data: ArrayDataset | None = None,
    **hooks: Unpack[RunHooks],
) -> TrainResult:
    """Train as `config` says, logging to `sink`: the same schedule and keys as `trainer.loop`."""
    if config.optimizer not in RULES:
        raise ValueError(f"the NumPy trainer has no optimizer {config.optimizer!r}")
    data = data if data is not None else arrays_for(config)
    classification = data.info.is_classification
    model = build_model(config, data.info)
    rule = RULES[config.optimizer]
    buffers = [np.zeros_like(w) for w in model.params]
    order = BatchOrder(len(data.y_train), config.batch_size, config.seed)

    def next_batch() -> tuple[np.ndarray, np.ndarray]:
        if order.full_batch:
            return data.x_train, data.y_train
        indices = order.next_indices()
        return data.x_train[indices], data.y_train[indices]

    with np.errstate(all="ignore"):  # divergence overflows to Inf/NaN: an outcome, not an error
        return StepSchedule(config, sink, **hooks).run(
            logged_step=lambda: _logged_step(
                model, rule, buffers, config, *next_batch(), classification
            ),
            plain_step=lambda: train_step(model, rule, buffers, config, *next_batch()),
            evaluate=lambda: evaluate(model, data.x_val, data.y_val, classification),
        )


__all__ = [
    "RULES",
    "LinearRegression",
    "SoftmaxRegression",
    "build_model",
    "cross_entropy",
    "evaluate",
    "mean_squared_error",
    "momentum",
    "nesterov",
    "sgd",
    "sgd_momentum",
    "train",
    "train_step",
]
