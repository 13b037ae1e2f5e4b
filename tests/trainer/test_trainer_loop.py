"""The training loop: determinism, what it logs and when, divergence, momentum's payoff."""

from __future__ import annotations

import math

import pytest
import torch

from momentum.contract.training import TRAINING_KEYS, TrainingConfig
from trainer.loop import RecordingSink, TrainResult, resolve_device, train

RAVINE = {"dataset": "ravine", "model": "linear", "batch_size": 1_000_000, "eval_every": 10_000}


def _train(**fields: object) -> tuple[TrainResult, RecordingSink]:
    sink = RecordingSink()
    result = train(TrainingConfig(device="cpu", **fields), sink)  # type: ignore[arg-type]
    return result, sink


def test_same_seed_same_losses_different_seed_different() -> None:
    fields = {"steps": 40, "eval_every": 20, "hidden": 32}
    _, first = _train(seed=5, **fields)
    _, again = _train(seed=5, **fields)
    _, other = _train(seed=6, **fields)
    assert first.series("loss") == again.series("loss")
    assert first.series("val_loss") == again.series("val_loss")
    assert first.series("loss")[1] != other.series("loss")[1]


def test_logging_schedule_and_keys() -> None:
    result, sink = _train(dataset="blobs", model="logreg", steps=60, log_every=10, eval_every=25)
    train_steps, _ = sink.series("loss")
    eval_steps, _ = sink.series("val_loss")
    assert train_steps == [0, 10, 20, 30, 40, 50, 59]  # the final step is always logged
    assert eval_steps == [0, 25, 50, 59]
    for key in ("accuracy", "lr", "grad_norm", "update_norm", "step_time"):
        assert sink.series(key)[0] == train_steps
    assert sink.series("val_accuracy")[0] == eval_steps
    assert {key for _, values in sink.rows for key in values} <= set(TRAINING_KEYS)
    assert all(len(values) > 0 for _, values in sink.rows)
    assert result.steps_done == 60
    assert result.final_loss == sink.series("loss")[1][-1]


def test_regression_logs_no_accuracy() -> None:
    result, sink = _train(**RAVINE, steps=5, lr=0.5)
    keys = {key for _, values in sink.rows for key in values}
    assert "accuracy" not in keys and "val_accuracy" not in keys
    assert {"loss", "val_loss", "grad_norm", "update_norm"} <= keys
    assert result.best_val_accuracy is None


def test_update_norm_is_lr_times_grad_norm_for_plain_sgd() -> None:
    _, sink = _train(dataset="blobs", model="logreg", optimizer="sgd", lr=0.2, steps=20)
    _, grad_norms = sink.series("grad_norm")
    _, update_norms = sink.series("update_norm")
    assert all(g > 0 for g in grad_norms)
    for grad_norm, update_norm in zip(grad_norms, update_norms, strict=True):
        assert update_norm == pytest.approx(0.2 * grad_norm, rel=1e-4)
    assert set(sink.series("lr")[1]) == {0.2}
    assert all(0 < t < 1 for t in sink.series("step_time")[1])


def _steps_to_reach(losses: list[float], threshold: float) -> int:
    return next(step for step, loss in enumerate(losses) if loss < threshold)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_momentum_crosses_the_ravine_at_least_three_times_faster(seed: int) -> None:
    """Same learning rate (η·L = 0.5), condition number 100: heavy ball with μ = 0.9
    reaches 1e-5 of the starting loss in at most a third of the steps μ = 0 needs."""
    common = {**RAVINE, "lr": 0.5, "steps": 1200, "seed": seed}
    _, plain = _train(momentum=0.0, **common)
    _, heavy = _train(momentum=0.9, **common)
    plain_losses, heavy_losses = plain.series("loss")[1], heavy.series("loss")[1]
    assert plain_losses[0] == heavy_losses[0]  # same data and initial weights
    threshold = 1e-5 * plain_losses[0]
    plain_steps = _steps_to_reach(plain_losses, threshold)
    heavy_steps = _steps_to_reach(heavy_losses, threshold)
    assert heavy_steps * 3 <= plain_steps, (heavy_steps, plain_steps)


def test_digits_mlp_reaches_ninety_percent_validation_accuracy() -> None:
    result, sink = _train(steps=300, eval_every=100, log_every=50)
    assert not result.diverged
    assert result.best_val_accuracy is not None and result.best_val_accuracy >= 0.90
    assert sink.series("val_accuracy")[1][-1] >= 0.90
    assert result.final_val_loss < 0.5


def test_digits_cnn_learns() -> None:
    result, _ = _train(model="cnn", steps=60, hidden=32, eval_every=60)
    assert result.best_val_accuracy is not None and result.best_val_accuracy >= 0.5


def test_divergence_is_logged_and_stops_training() -> None:
    result, sink = _train(**RAVINE, lr=10.0, steps=500)  # lr far beyond 2(1 + μ)/L
    losses = sink.series("loss")[1]
    assert result.diverged
    assert result.steps_done < 500
    assert result.steps_done == len(losses)  # stopped right after the first non-finite loss
    assert not math.isfinite(losses[-1]) and all(math.isfinite(v) for v in losses[:-1])
    assert not math.isfinite(result.final_loss)
    assert "val_loss" in sink.rows[-1][1]  # the stopping step is evaluated like a last step
    assert not result.cancelled


def test_divergence_without_stopping_runs_every_step() -> None:
    result, sink = _train(**RAVINE, lr=10.0, steps=500, stop_on_divergence=False)
    assert result.diverged
    assert result.steps_done == 500
    assert len(sink.series("loss")[1]) == 500
    assert math.isnan(result.final_loss)


def test_stable_training_is_not_diverged() -> None:
    result, _ = _train(**RAVINE, lr=1.0, steps=50)
    assert not result.diverged
    assert math.isfinite(result.final_loss)


def test_should_stop_makes_that_step_the_last() -> None:
    asked = []

    def should_stop() -> bool:
        asked.append(True)
        return len(asked) == 5

    progress: list[tuple[int, int]] = []
    result = train(
        TrainingConfig(steps=100, log_every=10, device="cpu", hidden=16),
        sink := RecordingSink(),
        should_stop=should_stop,
        on_progress=lambda done, total: progress.append((done, total)),
    )
    assert result.cancelled
    assert result.steps_done == 5
    assert sink.rows[-1][0] == 4
    assert {"loss", "val_loss"} <= set(sink.rows[-1][1])
    assert progress == [(1, 100), (5, 100)]


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    expected_auto = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected_auto
    if torch.cuda.is_available():
        assert resolve_device("cuda").type == "cuda"
    else:
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            resolve_device("cuda")
