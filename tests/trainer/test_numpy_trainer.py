"""The NumPy trainer: its update rules and gradients, and that it traces PyTorch's numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from momentum.contract.training import TrainingConfig
from trainer import loop, numpy_loop
from trainer.datasets import load_arrays
from trainer.results import RecordingSink

# float64 on both sides: only the order of floating-point sums differs (measured ~2e-14).
EQUIVALENCE_RTOL = 1e-10
SHARED_OPTIMIZERS = ["sgd", "momentum", "sgd_momentum", "nesterov"]
TASKS = {
    "ravine": {"dataset": "ravine", "model": "linear", "batch_size": 64},
    "blobs": {"dataset": "blobs", "model": "logreg", "batch_size": 32},
}


def config(**fields: object) -> TrainingConfig:
    base: dict[str, object] = {
        "framework": "numpy",
        "optimizer": "momentum",
        "momentum": 0.9,
        "lr": 0.1,
        "steps": 200,
        "eval_every": 50,
        "device": "cpu",
        **TASKS["ravine"],
    }
    return TrainingConfig(**{**base, **fields})  # type: ignore[arg-type]


def test_update_rules_by_hand() -> None:
    lr, mu, g = 0.1, 0.9, np.array([2.0])
    w, v = np.array([1.0]), np.array([0.5])
    numpy_loop.momentum(w, g, v, lr, mu)  # v = 0.9*0.5 - 0.1*2 = 0.25; w = 1.25
    assert v == pytest.approx(0.25) and w == pytest.approx(1.25)
    w, b = np.array([1.0]), np.array([0.5])
    numpy_loop.sgd_momentum(w, g, b, lr, mu)  # b = 0.45 + 2 = 2.45; w = 1 - 0.245
    assert b == pytest.approx(2.45) and w == pytest.approx(0.755)
    w, v = np.array([1.0]), np.array([0.5])
    numpy_loop.nesterov(w, g, v, lr, mu)  # v = 0.25; w = 1 + 0.9*0.25 - 0.2
    assert v == pytest.approx(0.25) and w == pytest.approx(1.025)
    w = np.array([1.0])
    numpy_loop.sgd(w, g, np.zeros(1), lr, mu)
    assert w == pytest.approx(0.8)


@pytest.mark.parametrize("task", sorted(TASKS))
def test_gradients_match_finite_differences(task: str) -> None:
    cfg = config(**TASKS[task])
    data = load_arrays(cfg.dataset, seed=0)
    model = numpy_loop.build_model(cfg, data.info)
    x, y = data.x_train[:50], data.y_train[:50]
    grads = model.gradients(x, model.forward(x), y)
    rng = np.random.default_rng(0)
    for param, grad in zip(model.params, grads, strict=True):
        for index in [tuple(rng.integers(0, n) for n in param.shape) for _ in range(5)]:
            original = param[index]
            param[index] = original + 1e-6
            up = model.loss(model.forward(x), y)
            param[index] = original - 1e-6
            down = model.loss(model.forward(x), y)
            param[index] = original
            assert (up - down) / 2e-6 == pytest.approx(grad[index], rel=1e-5, abs=1e-8)


@pytest.mark.parametrize("task", sorted(TASKS))
@pytest.mark.parametrize("optimizer", SHARED_OPTIMIZERS)
def test_numpy_traces_the_pytorch_loss_curve(optimizer: str, task: str) -> None:
    """Same data, seed, minibatches and hyperparameters, float64: the same numbers."""
    cfg = config(optimizer=optimizer, weight_decay=1e-3, **TASKS[task])
    by_numpy, by_torch = RecordingSink(), RecordingSink()
    numpy_loop.train(cfg, by_numpy)
    loop.train(cfg.model_copy(update={"framework": "torch"}), by_torch, dtype=torch.float64)
    for key in ("loss", "grad_norm", "update_norm", "val_loss", "accuracy", "val_accuracy"):
        steps, values = by_numpy.series(key)
        torch_steps, torch_values = by_torch.series(key)
        assert steps == torch_steps, key
        np.testing.assert_allclose(values, torch_values, rtol=EQUIVALENCE_RTOL, err_msg=key)
    losses = by_numpy.series("loss")[1]
    assert losses[-1] < 0.5 * losses[0]  # it trained: the comparison is not of two flat lines


def test_numpy_logs_the_pytorch_schedule_and_keys() -> None:
    cfg = config(dataset="blobs", model="logreg", steps=23, log_every=5, eval_every=10)
    by_numpy, by_torch = RecordingSink(), RecordingSink()
    numpy_loop.train(cfg, by_numpy)
    loop.train(cfg.model_copy(update={"framework": "torch"}), by_torch)
    assert [(s, sorted(v)) for s, v in by_numpy.rows] == [(s, sorted(v)) for s, v in by_torch.rows]
    assert [s for s, _ in by_numpy.rows] == [0, 5, 10, 15, 20, 22]


def test_numpy_divergence_is_logged_and_stops() -> None:
    result = numpy_loop.train(config(optimizer="sgd", lr=50.0, steps=500), sink := RecordingSink())
    assert result.diverged and result.steps_done < 500
    assert not math.isfinite(sink.series("loss")[1][-1])


def test_numpy_should_stop_makes_that_step_the_last() -> None:
    asked = []

    def should_stop() -> bool:
        asked.append(True)
        return len(asked) > 7

    sink = RecordingSink()
    result = numpy_loop.train(config(steps=100), sink, should_stop=should_stop)
    assert result.cancelled and result.steps_done == 8
    assert sink.rows[-1][0] == 7 and "val_loss" in sink.rows[-1][1]


def test_numpy_refuses_cuda() -> None:
    with pytest.raises(ValueError, match="framework 'numpy' runs on the CPU only"):
        config(device="cuda")
