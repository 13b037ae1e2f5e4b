"""Offline, seeded datasets: nothing is downloaded, and one seed always gives the same data.

- `ravine`: ill-conditioned least squares, where momentum's advantage is stark.
- `spirals`, `blobs`: 2-D classification toys.
- `digits`: scikit-learn's bundled 8x8 handwritten digits (it ships inside the package).

Features are always flat `(n, input_dim)`; a CNN unflattens them using
`DataInfo.image_shape`. Classification targets are int64 class indices; regression
targets are `(n, 1)` floats.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor

from momentum.contract.training import DatasetName, TrainingConfig

RAVINE_DIM = 32
# The ravine's largest curvature; 1 makes `lr` equal to η·L, so plain gradient descent is
# stable below lr = 2 and heavy-ball momentum below lr = 2·(1 + μ).
RAVINE_MAX_CURVATURE = 1.0
DEFAULT_SIZES: dict[str, int] = {"ravine": 1280, "spirals": 1500, "blobs": 1000}
VALIDATION_FRACTION = 0.2
SPIRAL_ARMS = 3
BLOB_CENTERS = 4


@dataclass(frozen=True)
class DataInfo:
    """What a model needs to know about its data."""

    name: str
    input_dim: int
    num_classes: int | None  # None for regression
    image_shape: tuple[int, int, int] | None = None  # (channels, height, width) for a CNN

    @property
    def is_classification(self) -> bool:
        return self.num_classes is not None


@dataclass(frozen=True)
class Dataset:
    """Train and validation tensors plus their metadata."""

    x_train: Tensor
    y_train: Tensor
    x_val: Tensor
    y_val: Tensor
    info: DataInfo

    def to(self, device: torch.device | str) -> Dataset:
        return replace(
            self,
            x_train=self.x_train.to(device),
            y_train=self.y_train.to(device),
            x_val=self.x_val.to(device),
            y_val=self.y_val.to(device),
        )


def dataset_for(config: TrainingConfig, dtype: torch.dtype = torch.float32) -> Dataset:
    """The dataset a training config names, seeded by its seed."""
    return load_dataset(
        config.dataset,
        seed=config.seed,
        size=config.dataset_size,
        condition_number=config.condition_number,
        dtype=dtype,
    )


def load_dataset(
    name: DatasetName,
    *,
    seed: int = 0,
    size: int | None = None,
    condition_number: float = 100.0,
    dtype: torch.dtype = torch.float32,
) -> Dataset:
    """Build dataset `name`; `size` is the total before the validation split (not digits)."""
    rng = np.random.default_rng(seed)
    if name == "ravine":
        return _ravine(rng, size or DEFAULT_SIZES["ravine"], condition_number, dtype)
    if name == "spirals":
        features, labels = _spiral_points(rng, size or DEFAULT_SIZES["spirals"], SPIRAL_ARMS)
        info = DataInfo(name, input_dim=2, num_classes=SPIRAL_ARMS)
        return _classification(info, features, labels, rng, dtype, standardize=False)
    if name == "blobs":
        features, labels = _blob_points(rng, size or DEFAULT_SIZES["blobs"], BLOB_CENTERS)
        info = DataInfo(name, input_dim=2, num_classes=BLOB_CENTERS)
        return _classification(info, features, labels, rng, dtype, standardize=True)
    if name == "digits":
        features, labels = _digit_images()
        info = DataInfo(name, input_dim=64, num_classes=10, image_shape=(1, 8, 8))
        return _classification(info, features, labels, rng, dtype, standardize=False)
    raise ValueError(f"unknown dataset {name!r}")


def _ravine(
    rng: np.random.Generator, size: int, condition_number: float, dtype: torch.dtype
) -> Dataset:
    """Noise-free least squares whose training loss has curvatures spanning the condition number.

    The training design is X = √n·Q·diag(σ)·Rᵀ with Q's columns orthonormal, so the
    Hessian of the mean squared error, 2·XᵀX/n = R·diag(2σ²)·Rᵀ, has eigenvalues exactly
    log-spaced from RAVINE_MAX_CURVATURE down to RAVINE_MAX_CURVATURE / condition_number,
    in a random rotation (so no coordinate is special). Validation rows come from the
    same covariance with Gaussian draws. The minimum loss is 0.
    """
    n_val = max(1, int(size * VALIDATION_FRACTION))
    n_train = max(RAVINE_DIM, size - n_val)
    curvatures = RAVINE_MAX_CURVATURE * np.logspace(0.0, -np.log10(condition_number), RAVINE_DIM)
    sigma = np.sqrt(curvatures / 2.0)
    rotation, _ = np.linalg.qr(rng.standard_normal((RAVINE_DIM, RAVINE_DIM)))
    orthonormal, _ = np.linalg.qr(rng.standard_normal((n_train, RAVINE_DIM)))
    x_train = np.sqrt(n_train) * orthonormal * sigma @ rotation.T
    x_val = rng.standard_normal((n_val, RAVINE_DIM)) * sigma @ rotation.T
    true_weights = rng.standard_normal(RAVINE_DIM)
    info = DataInfo(name="ravine", input_dim=RAVINE_DIM, num_classes=None)
    return Dataset(
        x_train=torch.as_tensor(x_train, dtype=dtype),
        y_train=torch.as_tensor(x_train @ true_weights, dtype=dtype).unsqueeze(1),
        x_val=torch.as_tensor(x_val, dtype=dtype),
        y_val=torch.as_tensor(x_val @ true_weights, dtype=dtype).unsqueeze(1),
        info=info,
    )


def _spiral_points(rng: np.random.Generator, size: int, arms: int) -> tuple[np.ndarray, np.ndarray]:
    """Interleaved spiral arms in the unit disc, one class per arm."""
    labels = np.arange(size) % arms  # arms take turns, so `size` need not divide evenly
    along_arm = (np.arange(size) // arms) / max(1, (size - 1) // arms)  # 0 → 1 outwards
    radius = 0.05 + 0.95 * along_arm
    angle = labels * (2 * np.pi / arms) + radius * 4.0 + rng.normal(0.0, 0.2, radius.shape)
    features = np.stack([radius * np.sin(angle), radius * np.cos(angle)], axis=1)
    return features, labels


def _blob_points(
    rng: np.random.Generator, size: int, centers: int
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian clusters around random centres; some overlap keeps accuracy below 100 %."""
    means = rng.uniform(-6.0, 6.0, (centers, 2))
    labels = rng.integers(0, centers, size)
    features = means[labels] + rng.normal(0.0, 1.5, (size, 2))
    return features, labels


def _digit_images() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 8x8 digits, pixel intensities scaled from 0..16 to [0, 1]."""
    from sklearn.datasets import load_digits  # imported here: only digits needs sklearn

    features, labels = load_digits(return_X_y=True)
    return features / 16.0, labels


def _classification(
    info: DataInfo,
    features: np.ndarray,
    labels: np.ndarray,
    rng: np.random.Generator,
    dtype: torch.dtype,
    *,
    standardize: bool,
) -> Dataset:
    """Shuffle, split off the validation set and, if asked, standardize with train stats."""
    order = rng.permutation(len(labels))
    n_val = max(1, int(len(labels) * VALIDATION_FRACTION))
    val_idx, train_idx = order[:n_val], order[n_val:]
    x_train, x_val = features[train_idx], features[val_idx]
    if standardize:
        mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-8
        x_train, x_val = (x_train - mean) / std, (x_val - mean) / std
    return Dataset(
        x_train=torch.as_tensor(x_train, dtype=dtype),
        y_train=torch.as_tensor(labels[train_idx], dtype=torch.int64),
        x_val=torch.as_tensor(x_val, dtype=dtype),
        y_val=torch.as_tensor(labels[val_idx], dtype=torch.int64),
        info=info,
    )


__all__ = ["DEFAULT_SIZES", "RAVINE_DIM", "DataInfo", "Dataset", "dataset_for", "load_dataset"]
