"""Offline, seeded datasets as NumPy arrays: nothing is downloaded, one seed gives the same data.

- `ravine`: ill-conditioned least squares, where momentum's advantage is stark.
- `spirals`, `blobs`: 2-D classification toys.
- `digits`: scikit-learn's bundled 8x8 handwritten digits (it ships inside the package).

This module imports NumPy only, so every framework (the NumPy trainer, Keras, PyTorch)
trains on the very same float64 arrays: `trainer.torch_data` wraps them in torch tensors. The
batch order (`BatchOrder`) is framework-free for the same reason: one seed gives every
framework the same minibatches, so their loss curves can be compared step by step.

Features are always flat `(n, input_dim)`; a CNN unflattens them using
`DataInfo.image_shape`. Classification targets are int64 class indices; regression
targets are `(n, 1)` floats.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from momentum.contract.training import DatasetName, TrainingConfig

RAVINE_DIM = 32
# The ravine's largest curvature; 1 makes `lr` equal to η·L, so plain gradient descent is
# stable below lr = 2 and heavy-ball momentum below lr = 2·(1 + μ).
RAVINE_MAX_CURVATURE = 1.0
DEFAULT_SIZES: dict[str, int] = {"ravine": 1280, "spirals": 1500, "blobs": 1000}
VALIDATION_FRACTION = 0.2
SPIRAL_ARMS = 3
BLOB_CENTERS = 4
# Independent random streams derived from a run's seed (the data uses the seed itself).
INIT_STREAM = 1
BATCH_STREAM = 2


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
class ArrayDataset:
    """Train and validation arrays (float64 features) plus their metadata."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    info: DataInfo


def arrays_for(config: TrainingConfig) -> ArrayDataset:
    """The dataset a training config names, seeded by its seed."""
    return load_arrays(
        config.dataset,
        seed=config.seed,
        size=config.dataset_size,
        condition_number=config.condition_number,
    )


def load_arrays(
    name: DatasetName, *, seed: int = 0, size: int | None = None, condition_number: float = 100.0
) -> ArrayDataset:
    """Build dataset `name`; `size` is the total before the validation split (not digits)."""
    rng = np.random.default_rng(seed)
    if name == "ravine":
        return _ravine(rng, size or DEFAULT_SIZES["ravine"], condition_number)
    if name == "spirals":
        features, labels = _spiral_points(rng, size or DEFAULT_SIZES["spirals"], SPIRAL_ARMS)
        info = DataInfo(name, input_dim=2, num_classes=SPIRAL_ARMS)
        return _classification(info, features, labels, rng, standardize=False)
    if name == "blobs":
        features, labels = _blob_points(rng, size or DEFAULT_SIZES["blobs"], BLOB_CENTERS)
        info = DataInfo(name, input_dim=2, num_classes=BLOB_CENTERS)
        return _classification(info, features, labels, rng, standardize=True)
    if name == "digits":
        features, labels = _digit_images()
        info = DataInfo(name, input_dim=64, num_classes=10, image_shape=(1, 8, 8))
        return _classification(info, features, labels, rng, standardize=False)
    raise ValueError(f"unknown dataset {name!r}")


class BatchOrder:
    """Endless shuffled minibatch indices from a generator seeded by the run's seed.

    Each epoch is a fresh permutation and drops its incomplete tail, so every batch has
    the same size. A batch size of at least the dataset size means full batches (all
    rows, in order).
    """

    def __init__(self, n: int, batch_size: int, seed: int) -> None:
        self.n = n
        self.batch_size = min(batch_size, n)
        self.rng = np.random.default_rng([seed, BATCH_STREAM])
        self._order = np.empty(0, dtype=np.int64)
        self._position = 0

    @property
    def full_batch(self) -> bool:
        return self.batch_size == self.n

    @property
    def batches_per_epoch(self) -> int:
        return self.n // self.batch_size

    def new_epoch(self) -> np.ndarray:
        """The next epoch's permutation of the row indices."""
        return self.rng.permutation(self.n)

    def next_indices(self) -> np.ndarray:
        if self.full_batch:
            return np.arange(self.n)
        if self._position + self.batch_size > len(self._order):
            self._order = self.new_epoch()
            self._position = 0
        indices = self._order[self._position : self._position + self.batch_size]
        self._position += self.batch_size
        return indices

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            yield self.next_indices()


def _ravine(rng: np.random.Generator, size: int, condition_number: float) -> ArrayDataset:
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
    return ArrayDataset(
        x_train=x_train,
        y_train=(x_train @ true_weights)[:, None],
        x_val=x_val,
        y_val=(x_val @ true_weights)[:, None],
        info=DataInfo(name="ravine", input_dim=RAVINE_DIM, num_classes=None),
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
    *,
    standardize: bool,
) -> ArrayDataset:
    """Shuffle, split off the validation set and, if asked, standardize with train stats."""
    order = rng.permutation(len(labels))
    n_val = max(1, int(len(labels) * VALIDATION_FRACTION))
    val_idx, train_idx = order[:n_val], order[n_val:]
    x_train, x_val = features[train_idx], features[val_idx]
    if standardize:
        mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-8
        x_train, x_val = (x_train - mean) / std, (x_val - mean) / std
    return ArrayDataset(
        x_train=np.asarray(x_train, dtype=np.float64),
        y_train=np.asarray(labels[train_idx], dtype=np.int64),
        x_val=np.asarray(x_val, dtype=np.float64),
        y_val=np.asarray(labels[val_idx], dtype=np.int64),
        info=info,
    )


def linear_init(
    seed: int, fan_in: int, fan_out: int, *, bias: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """Initial weights `(fan_out, fan_in)` and bias of a linear layer, the same in every framework.

    The distribution is PyTorch's default for `nn.Linear` (uniform in ±1/√fan_in for the
    weights and the bias), drawn from NumPy with the run's seed so that the NumPy, Keras
    and PyTorch trainers start `linear` and `logreg` from identical numbers.
    """
    rng = np.random.default_rng([seed, INIT_STREAM])
    bound = 1.0 / np.sqrt(fan_in)
    weight = rng.uniform(-bound, bound, (fan_out, fan_in))
    return weight, (rng.uniform(-bound, bound, fan_out) if bias else None)


__all__ = [
    "DEFAULT_SIZES",
    "RAVINE_DIM",
    "ArrayDataset",
    "BatchOrder",
    "DataInfo",
    "arrays_for",
    "linear_init",
    "load_arrays",
]
