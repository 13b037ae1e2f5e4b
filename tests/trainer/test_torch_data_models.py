"""Datasets are seeded and shaped as documented; models fit the data they are built for."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from momentum.contract.training import TrainingConfig
from trainer.torch_data import RAVINE_DIM, dataset_for, load_dataset
from trainer.torch_models import build_model

TRAINER_DIR = Path(__file__).resolve().parents[2] / "trainer"


def test_ravine_curvatures_span_the_condition_number() -> None:
    data = load_dataset("ravine", seed=3, condition_number=500.0, dtype=torch.float64)
    x = data.x_train
    hessian = 2.0 * x.T @ x / len(x)  # of the mean squared error
    curvatures = torch.linalg.eigvalsh(hessian)
    assert curvatures.max().item() == pytest.approx(1.0, rel=1e-9)
    assert (curvatures.max() / curvatures.min()).item() == pytest.approx(500.0, rel=1e-6)
    assert data.info.num_classes is None
    assert data.y_train.shape == (len(x), 1)


def test_ravine_targets_are_exactly_linear() -> None:
    data = load_dataset("ravine", seed=0, dtype=torch.float64)
    solution = torch.linalg.lstsq(data.x_train, data.y_train).solution
    assert torch.allclose(data.x_val @ solution, data.y_val, atol=1e-8)


@pytest.mark.parametrize(
    ("name", "classes", "input_dim"), [("spirals", 3, 2), ("blobs", 4, 2), ("digits", 10, 64)]
)
def test_classification_datasets_shapes_and_labels(name: str, classes: int, input_dim: int) -> None:
    data = load_dataset(name, seed=1)  # type: ignore[arg-type]
    assert data.info.num_classes == classes
    assert data.info.input_dim == input_dim
    assert data.x_train.dtype == torch.float32
    assert data.y_train.dtype == torch.int64
    assert data.x_train.shape[1] == data.x_val.shape[1] == input_dim
    assert set(data.y_train.tolist()) == set(range(classes))
    total = len(data.y_train) + len(data.y_val)
    assert len(data.y_val) == int(total * 0.2)


def test_digits_are_scaled_to_unit_interval_and_split_by_seed() -> None:
    first = load_dataset("digits", seed=0, dtype=torch.float64)
    assert first.x_train.dtype == torch.float64
    assert len(first.y_train) + len(first.y_val) == 1797
    assert first.x_train.min().item() == 0.0
    assert first.x_train.max().item() == 1.0
    assert first.info.image_shape == (1, 8, 8)
    again = load_dataset("digits", seed=0, dtype=torch.float64)
    other = load_dataset("digits", seed=1, dtype=torch.float64)
    assert torch.equal(first.x_val, again.x_val)
    assert not torch.equal(first.x_val, other.x_val)


@pytest.mark.parametrize("name", ["ravine", "spirals", "blobs"])
def test_generated_datasets_depend_on_seed_and_size(name: str) -> None:
    config = TrainingConfig(dataset=name, model="linear" if name == "ravine" else "mlp", seed=7)  # type: ignore[arg-type]
    same = dataset_for(config), dataset_for(config)
    assert torch.equal(same[0].x_train, same[1].x_train)
    other = dataset_for(config.model_copy(update={"seed": 8}))
    assert not torch.equal(same[0].x_train, other.x_train)
    sized = dataset_for(config.model_copy(update={"dataset_size": 200}))
    assert len(sized.y_train) + len(sized.y_val) == 200


@pytest.mark.parametrize(
    ("dataset", "model"),
    [
        ("ravine", "linear"),
        ("blobs", "logreg"),
        ("spirals", "mlp"),
        ("digits", "mlp"),
        ("digits", "cnn"),
    ],
)
def test_models_map_features_to_outputs(dataset: str, model: str) -> None:
    config = TrainingConfig(dataset=dataset, model=model, hidden=16)  # type: ignore[arg-type]
    data = dataset_for(config)
    net = build_model(config, data.info)
    outputs = net(data.x_val[:5])
    expected = 1 if data.info.num_classes is None else data.info.num_classes
    assert outputs.shape == (5, expected)
    if dataset == "ravine":
        assert data.info.input_dim == RAVINE_DIM
        assert [p.shape for p in net.parameters()] == [(1, RAVINE_DIM)]  # no bias


def test_trainer_never_imports_the_service() -> None:
    for source in TRAINER_DIR.rglob("*.py"):
        tree = ast.parse(source.read_text(), filename=str(source))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            assert not any(n == "service" or n.startswith("service.") for n in names), source
