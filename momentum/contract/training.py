"""The training configuration a job carries, and the metric keys a training loop logs.

This module is part of the wire contract: the service validates job bodies with it and
the trainer reads it, so it imports neither torch, FastAPI nor SQLAlchemy.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from momentum.contract.common import INT64_MAX

Framework = Literal["torch", "numpy", "keras"]
OptimizerName = Literal["sgd", "momentum", "sgd_momentum", "nesterov", "adam"]
DatasetName = Literal["ravine", "spirals", "blobs", "digits"]
ModelName = Literal["linear", "logreg", "mlp", "cnn"]
DeviceName = Literal["auto", "cpu", "cuda"]

# Metric keys the training loop logs. Per logged step (every `log_every` steps):
TRAIN_KEYS: tuple[str, ...] = (
    "loss",
    "accuracy",  # classification datasets only
    "lr",
    "grad_norm",
    "update_norm",
    "step_time",
)
# Every `eval_every` steps and at the last step:
EVAL_KEYS: tuple[str, ...] = ("val_loss", "val_accuracy")  # val_accuracy: classification only
TRAINING_KEYS: tuple[str, ...] = TRAIN_KEYS + EVAL_KEYS

REGRESSION_DATASETS: frozenset[str] = frozenset({"ravine"})

# Which optimizers and models each framework implements; torch implements everything.
FRAMEWORK_OPTIMIZERS: dict[str, frozenset[str]] = {
    "torch": frozenset({"sgd", "momentum", "sgd_momentum", "nesterov", "adam"}),
    "numpy": frozenset({"sgd", "momentum", "sgd_momentum", "nesterov"}),
    "keras": frozenset({"sgd", "momentum", "nesterov", "adam"}),
}
FRAMEWORK_MODELS: dict[str, frozenset[str]] = {
    "torch": frozenset({"linear", "logreg", "mlp", "cnn"}),
    "numpy": frozenset({"linear", "logreg"}),
    "keras": frozenset({"linear", "logreg", "mlp", "cnn"}),
}

CPU_ONLY_FRAMEWORKS: frozenset[str] = frozenset({"numpy"})


class TrainingConfig(BaseModel):
    """Everything needed to reproduce one training run.

    `momentum` is the momentum coefficient μ: the velocity decay for `momentum`,
    `sgd_momentum` and `nesterov`, and β₁ for `adam`. With `optimizer="sgd"` a non-zero
    `momentum` is allowed but ignored (plain SGD has no velocity), so a sweep over μ can
    include an `sgd` baseline without a special case.

    Impossible combinations (a `cnn` on `ravine`, a `linear` model on a classification
    dataset, an optimizer or model the chosen framework does not implement, `numpy` on
    `cuda`) are rejected with a message naming the fields and their values.
    """

    model_config = ConfigDict(extra="forbid")

    # Numbers and booleans are strict: `"seed": false` or `"steps": "5"` is refused, not 0 or 5.
    framework: Framework = "torch"
    optimizer: OptimizerName = "momentum"
    momentum: float = Field(strict=True, default=0.9, ge=0.0, lt=1.0, allow_inf_nan=False)
    lr: float = Field(strict=True, default=0.05, gt=0.0, allow_inf_nan=False)
    weight_decay: float = Field(strict=True, default=0.0, ge=0.0, allow_inf_nan=False)
    dataset: DatasetName = "digits"
    model: ModelName = Field(
        default="mlp",
        description="Default: `linear` for `ravine` (regression), `mlp` for the others.",
    )
    steps: int = Field(strict=True, default=1000, ge=1, le=10_000_000)
    batch_size: int = Field(strict=True, default=64, ge=1, le=1_000_000)
    seed: int = Field(strict=True, default=0, ge=0, le=INT64_MAX)  # fits a BIGINT column
    log_every: int = Field(strict=True, default=1, ge=1, le=INT64_MAX)
    eval_every: int = Field(strict=True, default=100, ge=1, le=INT64_MAX)
    stop_on_divergence: StrictBool = True
    device: DeviceName = "auto"
    # Optional knobs with defaults; they only matter for some datasets and models.
    condition_number: float = Field(
        strict=True,
        default=100.0,
        ge=1.0,
        le=1e8,
        allow_inf_nan=False,
        description="Ratio of largest to smallest curvature (ravine).",
    )
    dataset_size: int | None = Field(
        strict=True,
        default=None,
        ge=10,
        le=1_000_000,
        description="Examples to generate (ravine, spirals, blobs); digits ignores it.",
    )
    hidden: int = Field(
        strict=True, default=64, ge=1, le=4096, description="Hidden width (mlp, cnn)."
    )

    @model_validator(mode="before")
    @classmethod
    def _model_follows_dataset(cls, data: object) -> object:
        """No model given: the one the dataset needs, so `dataset=ravine` alone is valid."""
        if isinstance(data, dict) and "model" not in data:
            return {**data, "model": default_model(data.get("dataset"))}
        return data

    @model_validator(mode="after")
    def _check_combinations(self) -> TrainingConfig:
        problems = _combination_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def is_classification(self) -> bool:
        """True when the dataset has classes (so accuracy is logged)."""
        return self.dataset not in REGRESSION_DATASETS


def default_model(dataset: object) -> ModelName:
    """The model a config gets when it names none: `linear` for a regression dataset."""
    return "linear" if dataset in REGRESSION_DATASETS else "mlp"


def _combination_problems(config: TrainingConfig) -> list[str]:
    """Human-readable reasons why a config cannot run; empty when it can."""
    problems: list[str] = []
    model, dataset, framework = config.model, config.dataset, config.framework
    if model == "cnn" and dataset != "digits":
        problems.append(f"model 'cnn' needs dataset 'digits', got dataset '{dataset}'")
    if model == "linear" and dataset != "ravine":
        problems.append(
            f"model 'linear' (regression) needs dataset 'ravine', got dataset '{dataset}'"
        )
    if dataset == "ravine" and model != "linear":
        problems.append(f"dataset 'ravine' (regression) needs model 'linear', got model '{model}'")
    if config.optimizer not in FRAMEWORK_OPTIMIZERS[framework]:
        allowed = ", ".join(sorted(FRAMEWORK_OPTIMIZERS[framework]))
        problems.append(
            f"framework '{framework}' does not support optimizer '{config.optimizer}' "
            f"(supported: {allowed})"
        )
    if framework in CPU_ONLY_FRAMEWORKS and config.device == "cuda":
        problems.append(f"framework '{framework}' runs on the CPU only, got device 'cuda'")
    if model not in FRAMEWORK_MODELS[framework]:
        allowed = ", ".join(sorted(FRAMEWORK_MODELS[framework]))
        problems.append(
            f"framework '{framework}' does not support model '{model}' (supported: {allowed})"
        )
    return problems


__all__ = [
    "CPU_ONLY_FRAMEWORKS",
    "EVAL_KEYS",
    "FRAMEWORK_MODELS",
    "FRAMEWORK_OPTIMIZERS",
    "TRAINING_KEYS",
    "TRAIN_KEYS",
    "DatasetName",
    "DeviceName",
    "Framework",
    "ModelName",
    "OptimizerName",
    "TrainingConfig",
    "default_model",
]
