"""The datasets of `trainer.datasets` as torch tensors (see that module for what they are).

Features are always flat `(n, input_dim)`; a CNN unflattens them using
`DataInfo.image_shape`. Classification targets are int64 class indices; regression
targets are `(n, 1)` floats.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor

from momentum.contract.training import DatasetName, TrainingConfig
from trainer.datasets import DEFAULT_SIZES, RAVINE_DIM, ArrayDataset, DataInfo, load_arrays


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
    arrays = load_arrays(name, seed=seed, size=size, condition_number=condition_number)
    return to_tensors(arrays, dtype)


def to_tensors(arrays: ArrayDataset, dtype: torch.dtype = torch.float32) -> Dataset:
    """Features in `dtype`; targets as int64 classes or `dtype` regression values."""
    target_dtype = dtype if arrays.info.num_classes is None else torch.int64
    return Dataset(
        x_train=torch.as_tensor(arrays.x_train, dtype=dtype),
        y_train=torch.as_tensor(arrays.y_train, dtype=target_dtype),
        x_val=torch.as_tensor(arrays.x_val, dtype=dtype),
        y_val=torch.as_tensor(arrays.y_val, dtype=target_dtype),
        info=arrays.info,
    )


__all__ = [
    "DEFAULT_SIZES",
    "RAVINE_DIM",
    "DataInfo",
    "Dataset",
    "dataset_for",
    "load_dataset",
    "to_tensors",
]
