"""TrainingConfig: defaults, ranges, and impossible combinations named in the error."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from momentum.contract.training import TRAINING_KEYS, TrainingConfig


def _error_text(**fields: object) -> str:
    with pytest.raises(ValidationError) as caught:
        TrainingConfig(**fields)  # type: ignore[arg-type]
    return str(caught.value)


def test_defaults_are_valid_and_as_documented() -> None:
    config = TrainingConfig()
    assert (config.framework, config.optimizer, config.momentum, config.lr) == (
        "torch",
        "momentum",
        0.9,
        0.05,
    )
    assert (config.dataset, config.model, config.steps, config.batch_size) == (
        "digits",
        "mlp",
        1000,
        64,
    )
    assert (config.weight_decay, config.seed, config.log_every, config.eval_every) == (0, 0, 1, 100)
    assert config.stop_on_divergence is True
    assert config.device == "auto"


def test_json_round_trip_preserves_the_config() -> None:
    config = TrainingConfig(dataset="ravine", model="linear", momentum=0.5, condition_number=1e3)
    assert TrainingConfig.model_validate_json(config.model_dump_json()) == config


def test_unknown_field_is_rejected() -> None:
    with pytest.raises(ValidationError) as caught:
        TrainingConfig(learning_rate=0.1)  # type: ignore[call-arg]
    assert caught.value.errors()[0]["type"] == "extra_forbidden"
    assert caught.value.errors()[0]["loc"] == ("learning_rate",)


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"model": "cnn", "dataset": "ravine"}, ["model 'cnn'", "dataset 'ravine'"]),
        ({"model": "cnn", "dataset": "spirals"}, ["model 'cnn'", "dataset 'spirals'"]),
        ({"model": "linear", "dataset": "digits"}, ["model 'linear'", "dataset 'digits'"]),
        ({"model": "mlp", "dataset": "ravine"}, ["dataset 'ravine'", "model 'mlp'"]),
        ({"framework": "numpy", "optimizer": "adam"}, ["framework 'numpy'", "optimizer 'adam'"]),
        ({"framework": "numpy", "model": "mlp"}, ["framework 'numpy'", "model 'mlp'"]),
        (
            {"framework": "keras", "optimizer": "sgd_momentum"},
            ["framework 'keras'", "optimizer 'sgd_momentum'"],
        ),
        ({"framework": "numpy", "device": "cuda"}, ["framework 'numpy'", "device 'cuda'"]),
    ],
)
def test_impossible_combination_names_fields_and_values(
    fields: dict[str, object], named: list[str]
) -> None:
    message = _error_text(**fields)
    for fragment in named:
        assert fragment in message


def test_every_problem_is_reported_at_once() -> None:
    message = _error_text(framework="numpy", optimizer="adam", model="cnn", dataset="blobs")
    assert "optimizer 'adam'" in message
    assert "model 'cnn' needs dataset 'digits'" in message
    assert "does not support model 'cnn'" in message


@pytest.mark.parametrize(
    "fields",
    [
        {"dataset": "ravine", "model": "linear"},
        {"dataset": "spirals", "model": "mlp"},
        {"dataset": "blobs", "model": "logreg"},
        {"dataset": "digits", "model": "cnn"},
        {"framework": "numpy", "optimizer": "nesterov", "model": "logreg"},
        {"framework": "keras", "optimizer": "adam", "model": "cnn"},
        {"optimizer": "sgd", "momentum": 0.9},  # allowed: plain SGD ignores momentum
    ],
)
def test_possible_combinations_are_accepted(fields: dict[str, object]) -> None:
    TrainingConfig(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "fields",
    [
        {"momentum": 1.0},
        {"momentum": -0.1},
        {"lr": 0.0},
        {"lr": float("inf")},
        {"weight_decay": -1e-4},
        {"steps": 0},
        {"steps": 10_000_001},
        {"batch_size": 0},
        {"seed": -1},
        {"log_every": 0},
        {"eval_every": 0},
        {"optimizer": "rmsprop"},
        {"device": "tpu"},
    ],
)
def test_out_of_range_values_are_rejected(fields: dict[str, object]) -> None:
    (name,) = fields
    with pytest.raises(ValidationError) as caught:
        TrainingConfig(**fields)  # type: ignore[arg-type]
    assert caught.value.errors()[0]["loc"] == (name,)


def test_training_keys_list_what_the_loop_logs() -> None:
    assert set(TRAINING_KEYS) == {
        "loss",
        "accuracy",
        "lr",
        "grad_norm",
        "update_norm",
        "step_time",
        "val_loss",
        "val_accuracy",
    }


def test_contract_module_imports_no_heavy_stack() -> None:
    code = (
        "import sys, momentum.contract.training\n"
        "print(','.join(m for m in ('torch', 'fastapi', 'sqlalchemy') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
