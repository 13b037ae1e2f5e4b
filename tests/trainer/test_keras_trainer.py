"""The Keras trainer and `MomentumCallback`, on the PyTorch backend (no TensorFlow)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from momentum.contract.training import TrainingConfig
from momentum.keras import MomentumCallback, keras
from trainer import keras_loop, loop, numpy_loop
from trainer.results import RecordingSink

TASKS = {
    "ravine": {"dataset": "ravine", "model": "linear", "batch_size": 64},
    "blobs": {"dataset": "blobs", "model": "logreg", "batch_size": 32},
}


def config(**fields: object) -> TrainingConfig:
    base: dict[str, object] = {
        "framework": "keras",
        "optimizer": "momentum",
        "momentum": 0.9,
        "lr": 0.1,
        "steps": 150,
        "eval_every": 50,
        "device": "cpu",
        **TASKS["ravine"],
    }
    return TrainingConfig(**{**base, **fields})  # type: ignore[arg-type]


def test_keras_runs_on_the_torch_backend() -> None:
    assert keras.backend.backend() == "torch"
    assert "tensorflow" not in sys.modules and "jax" not in sys.modules


@pytest.mark.parametrize("task", sorted(TASKS))
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov"])
def test_keras_optimizers_follow_the_numpy_rules(optimizer: str, task: str) -> None:
    """Keras's SGD(momentum=μ) is the classical rule: the curve of the hand-written one.

    Keras trains in float32, NumPy in float64; measured, the curves differ by < 1e-6 of
    the first loss. The tolerance is 1e-5 of it.
    """
    cfg = config(optimizer=optimizer, weight_decay=1e-3, **TASKS[task])
    by_keras, by_numpy = RecordingSink(), RecordingSink()
    keras_loop.train(cfg, by_keras)
    numpy_loop.train(cfg.model_copy(update={"framework": "numpy"}), by_numpy)
    for key in ("loss", "val_loss"):
        steps, values = by_keras.series(key)
        numpy_steps, numpy_values = by_numpy.series(key)
        assert steps == numpy_steps
        scale = numpy_values[0]
        assert np.max(np.abs(np.subtract(values, numpy_values))) < 1e-5 * scale, key
    losses = by_numpy.series("loss")[1]
    assert losses[-1] < 0.5 * losses[0]


def test_keras_job_logs_the_pytorch_schedule() -> None:
    cfg = config(dataset="blobs", model="logreg", steps=23, log_every=5, eval_every=10)
    by_keras, by_torch = RecordingSink(), RecordingSink()
    result = keras_loop.train(cfg, by_keras)
    loop.train(cfg.model_copy(update={"framework": "torch"}), by_torch)
    assert [s for s, _ in by_keras.rows] == [s for s, _ in by_torch.rows] == [0, 5, 10, 15, 20, 22]
    for (_, keras_values), (_, torch_values) in zip(by_keras.rows, by_torch.rows, strict=True):
        assert set(keras_values) == set(torch_values) - {"grad_norm"}
    assert result.steps_done == 23 and result.best_val_accuracy is not None


def test_keras_adam_uses_momentum_as_beta1() -> None:
    optimizer = keras_loop.build_optimizer(config(optimizer="adam", momentum=0.8, lr=0.01))
    assert optimizer.beta_1 == pytest.approx(0.8) and optimizer.beta_2 == pytest.approx(0.999)
    result = keras_loop.train(config(optimizer="adam", lr=0.05, steps=100))
    assert result.final_loss < 0.2 * keras_loop_first_loss()


def keras_loop_first_loss() -> float:
    sink = RecordingSink()
    keras_loop.train(config(steps=1), sink)
    return sink.series("loss")[1][0]


def test_keras_should_stop_and_divergence_end_training() -> None:
    asked: list[bool] = []

    def should_stop() -> bool:
        asked.append(True)
        return len(asked) > 4

    sink = RecordingSink()
    result = keras_loop.train(config(steps=100), sink, should_stop=should_stop)
    assert result.cancelled and result.steps_done == 5 and sink.rows[-1][0] == 4
    diverged = keras_loop.train(config(optimizer="sgd", lr=50.0, steps=300))
    assert diverged.diverged and diverged.steps_done < 300


def test_callback_sends_each_batch_its_own_values() -> None:
    """Frozen weights make every batch's loss computable by hand, the short last one too."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((100, 4)).astype(np.float32)
    y = rng.integers(0, 3, 100)
    layer = keras.layers.Dense(3, trainable=False)
    model = keras.Sequential([keras.Input((4,)), layer])
    model.compile(
        optimizer="sgd",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    sink = RecordingSink()
    callback = MomentumCallback(sink)
    with pytest.warns(UserWarning, match="trainable weights"):
        model.fit(
            x, y, batch_size=32, epochs=2, shuffle=False, verbose=0,
            validation_data=(x[:50], y[:50]), callbacks=[callback],
        )  # fmt: skip
    weight, bias = (keras_loop.to_numpy(w) for w in layer.weights)
    logits = x @ weight + bias
    per_example = -numpy_loop._log_softmax(logits)[np.arange(100), y]
    correct = logits.argmax(axis=1) == y
    bounds = [(0, 32), (32, 64), (64, 96), (96, 100)]  # the last batch holds 4 examples
    steps, losses = sink.series("loss")
    assert steps == list(range(8))
    expected = [per_example[a:b].mean() for a, b in bounds] * 2
    np.testing.assert_allclose(losses, expected, rtol=1e-5)
    np.testing.assert_allclose(
        sink.series("accuracy")[1], [correct[a:b].mean() for a, b in bounds] * 2, atol=1e-6
    )
    assert sink.series("val_loss")[0] == [3, 7]  # each epoch's last batch
    assert sink.series("val_loss")[1][0] == pytest.approx(per_example[:50].mean(), rel=1e-5)


def test_callback_log_every_sends_every_nth_batch() -> None:
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    sink = RecordingSink()
    x = np.ones((40, 2), dtype=np.float32)
    callback = MomentumCallback(sink, log_every=3)
    model.fit(x, x[:, :1], batch_size=4, epochs=2, verbose=0, callbacks=[callback])
    assert sink.series("loss")[0] == [0, 3, 6, 9, 12, 15, 18]


def test_without_keras_the_error_says_what_to_install() -> None:
    code = (
        "import sys\n"
        "sys.modules['keras'] = None  # as if it were not installed\n"
        "try:\n"
        "    import momentum.keras\n"
        "except ModuleNotFoundError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "pip install 'momentum-monitor[keras]'" in result.stdout, result.stderr
