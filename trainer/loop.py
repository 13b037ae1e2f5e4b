"""The PyTorch training loop: `train_step` updates once, `evaluate` measures, `train` runs it all.

Metrics leave through a `MetricSink` passed in, so the loop knows nothing about HTTP.
Which steps log and evaluate, and how divergence and `should_stop` end a run, is the
schedule every framework shares (`trainer.schedule`). On a logged step the sink gets
`loss`, `accuracy` (classification), `lr`, `grad_norm`, `update_norm` and `step_time`;
on an evaluated step also `val_loss` and `val_accuracy` (classification). Values are
read from the device only on those steps, in one transfer, because each read is a
synchronisation point.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Unpack

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.optim import Optimizer

from momentum.contract.training import TrainingConfig
from trainer.datasets import BatchOrder
from trainer.results import MetricSink, NullSink, RecordingSink, RunHooks, TrainResult, total_norm
from trainer.schedule import StepSchedule
from trainer.torch_data import Dataset, dataset_for
from trainer.torch_models import build_model
from trainer.torch_optim import build_optimizer

LossFn = Callable[[Tensor, Tensor], Tensor]
EVAL_CHUNK = 4096  # validation rows per forward pass, to bound memory on large datasets


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) so a run is repeatable."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # NumPy's legacy seed must fit in 32 bits
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    """`auto` means CUDA when this machine has it, else CPU; `cuda` without CUDA is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was requested but CUDA is not available here")
    return torch.device(name)


class BatchSampler:
    """Endless shuffled minibatches in the order `trainer.datasets.BatchOrder` gives.

    The permutations come from NumPy, seeded by the run's seed, so a seed gives the same
    batches on any device and in every framework. Each epoch's permutation moves to the
    device once; each epoch drops its incomplete tail, so every batch has the same size.
    """

    def __init__(self, x: Tensor, y: Tensor, batch_size: int, seed: int) -> None:
        self.x, self.y = x, y
        self.order = BatchOrder(len(y), batch_size, seed)
        self.batch_size = self.order.batch_size
        self._epoch = torch.empty(0, dtype=torch.int64)
        self._position = 0

    def next_batch(self) -> tuple[Tensor, Tensor]:
        if self.order.full_batch:
            return self.x, self.y  # full batch: order does not matter
        if self._position + self.batch_size > len(self._epoch):
            self._epoch = torch.as_tensor(self.order.new_epoch()).to(self.x.device)
            self._position = 0
        indices = self._epoch[self._position : self._position + self.batch_size]
        self._position += self.batch_size
        return self.x[indices], self.y[indices]


def train_step(
    model: nn.Module, optimizer: Optimizer, loss_fn: LossFn, x: Tensor, y: Tensor
) -> tuple[Tensor, Tensor]:
    """One update on one batch; returns the batch loss and outputs, still on the device."""
    optimizer.zero_grad(set_to_none=True)
    outputs = model(x)
    loss = loss_fn(outputs, y)
    loss.backward()
    optimizer.step()
    return loss.detach(), outputs.detach()


@torch.no_grad()
def evaluate(
    model: nn.Module, loss_fn: LossFn, x: Tensor, y: Tensor, classification: bool
) -> dict[str, float]:
    """Validation loss (and accuracy for classifiers) over the whole set, in eval mode."""
    model.eval()
    try:
        loss_sum = torch.zeros((), device=x.device, dtype=torch.float64)
        correct = torch.zeros((), device=x.device, dtype=torch.float64)
        for start in range(0, len(y), EVAL_CHUNK):
            x_chunk, y_chunk = x[start : start + EVAL_CHUNK], y[start : start + EVAL_CHUNK]
            outputs = model(x_chunk)
            loss_sum += loss_fn(outputs, y_chunk).double() * len(y_chunk)
            if classification:
                correct += (outputs.argmax(dim=1) == y_chunk).sum()
        val_loss, val_correct = torch.stack([loss_sum, correct]).tolist()  # one device read
    finally:
        model.train()
    values = {"val_loss": val_loss / len(y)}
    if classification:
        values["val_accuracy"] = val_correct / len(y)
    return values


@dataclass
class TrainingSetup:
    """Everything `train` builds from a config before the first step."""

    config: TrainingConfig
    device: torch.device
    data: Dataset
    model: nn.Module
    optimizer: Optimizer
    loss_fn: LossFn
    sampler: BatchSampler
    # Built once because a logged step needs them: the trainable parameters (they hold
    # the gradients) and detached views of them (they see every in-place update).
    parameters: list[Tensor] = field(default_factory=list)
    weights: list[Tensor] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.parameters = [p for p in self.model.parameters() if p.requires_grad]
        self.weights = [p.detach() for p in self.parameters]

    @property
    def classification(self) -> bool:
        return self.data.info.is_classification

    def validation_values(self) -> dict[str, float]:
        data = self.data
        return evaluate(self.model, self.loss_fn, data.x_val, data.y_val, self.classification)


def prepare(
    config: TrainingConfig, dtype: torch.dtype = torch.float32, data: Dataset | None = None
) -> TrainingSetup:
    """Seed, pick the device, load data, build model and optimizer (in that order)."""
    seed_everything(config.seed)
    device = resolve_device(config.device)
    if device.type == "cuda":
        # cuDNN may otherwise pick non-deterministic kernels, and a retried job must
        # upsert the same points it wrote the first time.
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    data = (data if data is not None else dataset_for(config, dtype=dtype)).to(device)
    model = build_model(config, data.info, dtype).to(device=device, dtype=dtype)
    model.train()
    loss_fn: LossFn = F.cross_entropy if data.info.is_classification else F.mse_loss
    return TrainingSetup(
        config=config,
        device=device,
        data=data,
        model=model,
        optimizer=build_optimizer(model.parameters(), config),
        loss_fn=loss_fn,
        sampler=BatchSampler(data.x_train, data.y_train, config.batch_size, config.seed),
    )


def _logged_train_step(setup: TrainingSetup) -> dict[str, float]:
    """A train step that also measures itself: the only place training values leave the device."""
    weights = setup.weights
    before = [w.clone() for w in weights]
    started = time.perf_counter()
    x, y = setup.sampler.next_batch()
    loss, outputs = train_step(setup.model, setup.optimizer, setup.loss_fn, x, y)
    if setup.device.type == "cuda":
        torch.cuda.synchronize(setup.device)  # kernels run asynchronously: wait, then time
    step_time = time.perf_counter() - started
    grads = [p.grad for p in setup.parameters if p.grad is not None]
    # Per-tensor norms in one fused call; the totals are combined on the host below, so
    # everything comes back in a single device read (each read is a synchronisation).
    norms = torch._foreach_norm([*grads, *torch._foreach_sub(weights, before)])
    correct = (outputs.argmax(dim=1) == y).sum() if setup.classification else loss.new_zeros(())
    read = torch.stack([loss, correct.to(loss.dtype), *norms]).tolist()
    values = {
        "loss": read[0],
        "lr": float(setup.optimizer.param_groups[0]["lr"]),
        "grad_norm": total_norm(read[2 : 2 + len(grads)]),
        "update_norm": total_norm(read[2 + len(grads) :]),
        "step_time": step_time,
    }
    if setup.classification:
        values["accuracy"] = read[1] / len(y)
    return values


def train(
    config: TrainingConfig,
    sink: MetricSink | None = None,
    *,
    dtype: torch.dtype = torch.float32,
    data: Dataset | None = None,
    **hooks: Unpack[RunHooks],
) -> TrainResult:
    """Train as `config` says, logging to `sink`; see the module docstring for what is logged.

    `hooks` are `should_stop` and `on_progress` (see `trainer.schedule.StepSchedule`).
    `data` reuses an already loaded dataset (it must be the one `config` names).
    """
    setup = prepare(config, dtype=dtype, data=data)
    return StepSchedule(config, sink, **hooks).run(
        logged_step=lambda: _logged_train_step(setup),
        plain_step=lambda: train_step(
            setup.model, setup.optimizer, setup.loss_fn, *setup.sampler.next_batch()
        ),
        evaluate=setup.validation_values,
    )


__all__ = [
    "BatchSampler",
    "MetricSink",
    "NullSink",
    "RecordingSink",
    "TrainResult",
    "TrainingSetup",
    "evaluate",
    "prepare",
    "resolve_device",
    "seed_everything",
    "train",
    "train_step",
]
