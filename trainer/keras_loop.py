"""The Keras trainer (`framework: keras`): `model.fit` with `MomentumCallback`, on PyTorch.

Keras 3 runs on the PyTorch backend here (`momentum.keras` sets `KERAS_BACKEND=torch`
unless another is chosen), so no TensorFlow is needed. The optimizers by name:

    sgd        keras.optimizers.SGD(momentum=0)
    momentum   keras.optimizers.SGD(momentum=μ)                 v ← μ·v − η·g; w ← w + v
    nesterov   keras.optimizers.SGD(momentum=μ, nesterov=True)  v ← μ·v − η·g; w ← w + μ·v − η·g
    adam       keras.optimizers.Adam(beta_1=μ, beta_2=0.999, epsilon=1e-8)

Keras's own `weight_decay` is decoupled (w ← w − η·wd·w); to mean what it means in the
other frameworks, `weight_decay` here is coupled L2 (g ← g + wd·w before the rule).
There is no `sgd_momentum` (PyTorch's form of the rule has no Keras optimizer).

Data, minibatch order and the initial weights of `linear` and `logreg` come from
`trainer.datasets`, as for NumPy and PyTorch, so the three frameworks' loss curves of one
config can be compared step by step. `mlp` and `cnn` use Keras's own initialisers,
seeded. Per-batch `loss` and `accuracy` come from `MomentumCallback` (the batch's own
values); the job's callback (`trainer.keras_callback`) adds `lr`, `update_norm`,
`step_time` and the validation metrics, on the schedule every framework shares
(`trainer.schedule`). `grad_norm` is not logged: `fit` does not expose the gradients.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, Unpack

import numpy as np

from momentum.contract.training import TrainingConfig
from trainer.datasets import ArrayDataset, BatchOrder, DataInfo, arrays_for, linear_init
from trainer.numpy_loop import cross_entropy, mean_squared_error
from trainer.results import MetricSink, RunHooks, TrainResult
from trainer.schedule import StepSchedule

ADAM_EPSILON = 1e-8  # PyTorch's default (Keras's is 1e-7)


def _keras() -> Any:
    from momentum.keras import keras  # raises the "pip install 'momentum-monitor[keras]'" error

    return keras


def build_optimizer(config: TrainingConfig) -> Any:
    """The Keras optimizer `config.optimizer` names (see the module docstring)."""
    keras = _keras()
    lr, mu, name = config.lr, config.momentum, config.optimizer
    kwargs: dict[str, Any]
    if name == "sgd":
        base, kwargs = keras.optimizers.SGD, {"momentum": 0.0}
    elif name == "momentum":
        base, kwargs = keras.optimizers.SGD, {"momentum": mu}
    elif name == "nesterov":
        base, kwargs = keras.optimizers.SGD, {"momentum": mu, "nesterov": True}
    elif name == "adam":
        base, kwargs = keras.optimizers.Adam, {"beta_1": mu, "epsilon": ADAM_EPSILON}
    else:
        raise ValueError(f"the Keras trainer has no optimizer {name!r}")
    if config.weight_decay:
        base = _with_coupled_decay(base, config.weight_decay)
    return base(learning_rate=lr, **kwargs)


def _with_coupled_decay(base: type, weight_decay: float) -> type:
    keras = _keras()

    class CoupledDecay(base):
        """`base` with L2 weight decay added to the gradient, as PyTorch does it."""

        def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
            decay = keras.ops.multiply(variable, weight_decay)
            super().update_step(keras.ops.add(gradient, decay), variable, learning_rate)

    CoupledDecay.__name__ = f"{base.__name__}CoupledDecay"
    return CoupledDecay


def build_model(config: TrainingConfig, info: DataInfo) -> Any:
    """The Keras model `config.model` names, shaped for `info`; seed Keras first."""
    keras = _keras()
    layers = keras.layers
    inputs = keras.Input((info.input_dim,))
    if config.model == "linear":
        head = layers.Dense(1, use_bias=False)
        model = keras.Model(inputs, head(inputs))
        weight, _ = linear_init(config.seed, info.input_dim, 1, bias=False)
        head.set_weights([weight.T])
        return model
    classes = info.num_classes
    if classes is None:
        raise ValueError(f"model {config.model!r} is a classifier, {info.name!r} has no classes")
    if config.model == "logreg":
        head = layers.Dense(classes)
        model = keras.Model(inputs, head(inputs))
        weight, bias = linear_init(config.seed, info.input_dim, classes, bias=True)
        head.set_weights([weight.T, bias])
        return model
    if config.model == "mlp":
        hidden = layers.Dense(config.hidden, activation="relu")(inputs)
        hidden = layers.Dense(config.hidden, activation="relu")(hidden)
        return keras.Model(inputs, layers.Dense(classes)(hidden))
    if config.model == "cnn" and info.image_shape is not None:
        channels, height, width = info.image_shape
        x = layers.Reshape((channels, height, width))(inputs)
        x = layers.Permute((2, 3, 1))(x)  # channels last, Keras's default layout
        x = layers.Conv2D(16, 3, padding="same", activation="relu")(x)
        x = layers.Conv2D(32, 3, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D(2)(x)
        x = layers.Dense(config.hidden, activation="relu")(layers.Flatten()(x))
        return keras.Model(inputs, layers.Dense(classes)(x))
    raise ValueError(f"the Keras trainer has no model {config.model!r} for {info.name!r}")


def _batches(data: ArrayDataset, order: BatchOrder) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Endless (x, y) minibatches in the shared order, as Keras's float32."""
    x = data.x_train.astype(np.float32)
    y = data.y_train if data.info.is_classification else data.y_train.astype(np.float32)
    for indices in order:
        yield x[indices], y[indices]


def evaluate(model: Any, data: ArrayDataset) -> dict[str, float]:
    """Validation loss (and accuracy for classifiers) over the whole set, in inference mode."""
    outputs = to_numpy(model(data.x_val.astype(np.float32), training=False))
    if not data.info.is_classification:
        return {"val_loss": mean_squared_error(outputs, data.y_val)}
    return {
        "val_loss": cross_entropy(outputs, data.y_val),
        "val_accuracy": float(np.mean(outputs.argmax(axis=1) == data.y_val)),
    }


def to_numpy(value: Any) -> np.ndarray:
    """A float64 copy of a Keras variable or backend tensor.

    Through `.detach().cpu()` on torch: `np.asarray` of a torch tensor goes through an
    `__array__` that NumPy 2 warns about on every call.
    """
    value = getattr(value, "value", value)  # a Keras variable holds a backend tensor
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.array(value, dtype=np.float64)


def _device_scope(name: str) -> Any:
    import contextlib

    keras = _keras()
    if name == "auto":
        return contextlib.nullcontext()
    if name == "cuda" and keras.backend.backend() == "torch":
        import torch

        if not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' was requested but CUDA is not available here")
    # No device index: on the torch backend, a Parameter created on "cpu" and moved to
    # "cpu:0" becomes a non-leaf copy that never gets a gradient.
    return keras.device("gpu" if name == "cuda" else "cpu")


def _compile(model: Any, config: TrainingConfig, info: DataInfo) -> None:
    keras = _keras()
    classification = info.is_classification
    model.compile(
        optimizer=build_optimizer(config),
        loss=(
            keras.losses.SparseCategoricalCrossentropy(from_logits=True)
            if classification
            else keras.losses.MeanSquaredError()
        ),
        metrics=["accuracy"] if classification else [],
    )


def train(
    config: TrainingConfig,
    sink: MetricSink | None = None,
    *,
    data: ArrayDataset | None = None,
    **hooks: Unpack[RunHooks],
) -> TrainResult:
    """Train with `model.fit` as `config` says, logging to `sink` on the shared schedule."""
    from trainer.keras_callback import JobCallback  # imports Keras

    keras = _keras()
    keras.utils.set_random_seed(config.seed % 2**32)
    data = data if data is not None else arrays_for(config)
    order = BatchOrder(len(data.y_train), config.batch_size, config.seed)
    per_epoch = max(1, min(order.batches_per_epoch, config.steps))
    schedule = StepSchedule(config, sink, **hooks)
    callback = JobCallback(schedule, data)
    with _device_scope(config.device):
        model = build_model(config, data.info)
        _compile(model, config, data.info)
        model.fit(
            _batches(data, order),
            steps_per_epoch=per_epoch,
            epochs=math.ceil(config.steps / per_epoch),
            verbose=0,
            callbacks=[callback],
            shuffle=False,  # the batches come shuffled, in the order every framework shares
        )
    return schedule.result()


__all__ = ["build_model", "build_optimizer", "evaluate", "to_numpy", "train"]
