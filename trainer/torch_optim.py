"""Optimizers by the names the contract uses (`TrainingConfig.optimizer`).

`momentum` is the classical rule written out by hand, so the product can show the
textbook update next to PyTorch's own `SGD(momentum=μ)`:

    v ← μ·v − η·g          (g ← g + wd·w when weight decay is set)
    w ← w + v

PyTorch's form keeps a buffer b ← μ·b + g and steps w ← w − η·b. For a constant η the
two trace identical weights (v = −η·b); they differ only when η changes mid-run,
because here the velocity already carries the old learning rates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

from momentum.contract.training import TrainingConfig

ParamsT = Iterable[Tensor] | Iterable[dict[str, Any]]


class ClassicalMomentum(Optimizer):
    """Classical (Polyak heavy-ball) momentum: `v ← μ·v − η·g; w ← w + v`.

    The per-parameter state is one tensor, `"velocity"`, so it round-trips through
    `state_dict()` / `load_state_dict()` like any built-in optimizer's state.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
    ) -> None:
        if lr <= 0.0:
            raise ValueError(f"lr must be > 0, got {lr}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        defaults = {"lr": lr, "momentum": momentum, "weight_decay": weight_decay}
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if params:
                self._update(params, group["lr"], group["momentum"], group["weight_decay"])
        return loss

    def _update(self, params: list[Tensor], lr: float, mu: float, wd: float) -> None:
        """The rule itself, applied to all tensors of a group at once.

        Fused `_foreach` calls (the ones torch's own optimizers use) do the same
        arithmetic as a per-tensor loop with a handful of kernel launches instead of
        three per tensor, which matters when the model is small and steps are short.
        """
        grads = [p.grad for p in params if p.grad is not None]
        if wd != 0.0:
            grads = list(torch._foreach_add(grads, params, alpha=wd))  # g ← g + wd·w
        velocities = [self._velocity(p) for p in params]
        torch._foreach_mul_(velocities, mu)  # v ← μ·v ...
        torch._foreach_add_(velocities, grads, alpha=-lr)  # ... − η·g
        torch._foreach_add_(params, velocities)  # w ← w + v

    def _velocity(self, param: Tensor) -> Tensor:
        state = self.state[param]
        if "velocity" not in state:
            state["velocity"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        return state["velocity"]


def build_optimizer(params: ParamsT, config: TrainingConfig) -> Optimizer:
    """The optimizer `config.optimizer` names, with its lr, momentum and weight decay.

    `sgd` ignores `config.momentum` (see `TrainingConfig`); for `adam` the momentum is
    β₁ and β₂ stays at its usual 0.999.
    """
    name, lr, mu, wd = config.optimizer, config.lr, config.momentum, config.weight_decay
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.0, weight_decay=wd)
    if name == "momentum":
        return ClassicalMomentum(params, lr=lr, momentum=mu, weight_decay=wd)
    if name == "sgd_momentum":
        return torch.optim.SGD(params, lr=lr, momentum=mu, weight_decay=wd)
    if name == "nesterov":
        # torch refuses nesterov with zero momentum; μ = 0 is plain SGD anyway.
        return torch.optim.SGD(params, lr=lr, momentum=mu, nesterov=mu > 0.0, weight_decay=wd)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=(mu, 0.999), weight_decay=wd)
    raise ValueError(f"unknown optimizer {name!r}")


__all__ = ["ClassicalMomentum", "build_optimizer"]
