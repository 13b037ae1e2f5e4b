"""Models by the names the contract uses (`TrainingConfig.model`); no training code here.

Every model takes flat features `(batch, input_dim)`; the CNN unflattens them itself, so
the data pipeline and the training loop never special-case image models.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from momentum.contract.training import TrainingConfig
from trainer.datasets import linear_init
from trainer.torch_data import DataInfo


def linear_regression(input_dim: int, dtype: torch.dtype | None = None) -> nn.Linear:
    """A single output, no bias: the ravine is centred, and a bias would only add a
    well-conditioned direction that blurs the condition number the dataset sets."""
    return nn.Linear(input_dim, 1, bias=False, dtype=dtype)


def logistic_regression(
    input_dim: int, num_classes: int, dtype: torch.dtype | None = None
) -> nn.Linear:
    """Multinomial logistic regression: one linear layer producing class logits."""
    return nn.Linear(input_dim, num_classes, dtype=dtype)


def mlp(input_dim: int, num_classes: int, hidden: int) -> nn.Module:
    """Two ReLU hidden layers: enough to separate interleaved spirals."""
    return nn.Sequential(
        nn.Linear(input_dim, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, num_classes),
    )


class SmallCNN(nn.Module):
    """Two 3x3 convolutions and a 2x2 pool, sized for 8x8 single-channel digits."""

    def __init__(self, image_shape: tuple[int, int, int], num_classes: int, hidden: int) -> None:
        super().__init__()
        channels, height, width = image_shape
        self.image_shape = image_shape
        self.features = nn.Sequential(
            nn.Conv2d(channels, 16, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(32 * (height // 2) * (width // 2), hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        images = x.view(x.shape[0], *self.image_shape)
        return self.classifier(self.features(images))


def shared_init(layer: nn.Linear, seed: int) -> nn.Linear:
    """Start `layer` from `trainer.datasets.linear_init`: the numbers every framework uses."""
    weight, bias = linear_init(
        seed, layer.in_features, layer.out_features, bias=layer.bias is not None
    )
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(weight))
        if layer.bias is not None and bias is not None:
            layer.bias.copy_(torch.as_tensor(bias))
    return layer


def build_model(
    config: TrainingConfig, data_info: DataInfo, dtype: torch.dtype | None = None
) -> nn.Module:
    """The model `config.model` names, shaped for `data_info`.

    `linear` and `logreg`, which every framework implements, start from the shared
    NumPy initialisation, so the NumPy, Keras and PyTorch runs of one config begin at
    the same weights. `mlp` and `cnn` are initialised from torch's global generator, so
    seed it first. `dtype` (default: torch's) is where the shared numbers are rounded to.
    """
    name = config.model
    if name == "linear":
        return shared_init(linear_regression(data_info.input_dim, dtype), config.seed)
    num_classes = data_info.num_classes
    if num_classes is None:
        raise ValueError(
            f"model {name!r} is a classifier but dataset {data_info.name!r} has no classes"
        )
    if name == "logreg":
        layer = logistic_regression(data_info.input_dim, num_classes, dtype)
        return shared_init(layer, config.seed)
    if name == "mlp":
        return mlp(data_info.input_dim, num_classes, config.hidden)
    if name == "cnn":
        if data_info.image_shape is None:
            raise ValueError(f"model 'cnn' needs images, dataset {data_info.name!r} has none")
        return SmallCNN(data_info.image_shape, num_classes, config.hidden)
    raise ValueError(f"unknown model {name!r}")


__all__ = [
    "SmallCNN",
    "build_model",
    "linear_regression",
    "logistic_regression",
    "mlp",
    "shared_init",
]
