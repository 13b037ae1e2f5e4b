"""Optimizers: the hand-written classical momentum against PyTorch's, state, and names."""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from momentum.contract.training import TrainingConfig
from trainer.torch_optim import ClassicalMomentum, build_optimizer

STEPS = 100


def _quadratic(seed: int, dim: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """f(w) = ½·wᵀHw − bᵀw with H symmetric PSD, eigenvalues in [0, 1] (so L ≤ 1)."""
    rng = np.random.default_rng(seed)
    rotation, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    curvatures = rng.uniform(0.0, 1.0, dim)
    hessian = rotation @ np.diag(curvatures) @ rotation.T
    offset, start = rng.standard_normal(dim), rng.standard_normal(dim)
    return tuple(torch.tensor(a, dtype=torch.float64) for a in (hessian, offset, start))  # type: ignore[return-value]


def _trajectory(
    make: Callable[..., torch.optim.Optimizer],
    problem: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    **hyper: float,
) -> list[torch.Tensor]:
    hessian, offset, start = problem
    weights = start.clone().requires_grad_(True)
    optimizer = make([weights], **hyper)
    visited = []
    for _ in range(STEPS):
        optimizer.zero_grad(set_to_none=True)
        loss = 0.5 * weights @ hessian @ weights - offset @ weights
        loss.backward()
        optimizer.step()
        visited.append(weights.detach().clone())
    return visited


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    dim=st.integers(1, 6),
    lr_times_l=st.floats(0.01, 1.0),
    mu=st.floats(0.0, 0.99),
    weight_decay=st.sampled_from([0.0, 1e-3, 0.1]),
)
def test_classical_momentum_traces_torch_sgd_momentum(
    seed: int, dim: int, lr_times_l: float, mu: float, weight_decay: float
) -> None:
    """With a constant learning rate, v ← μv − ηg; w ← w + v and torch's b ← μb + g;
    w ← w − ηb visit the same weights (v = −ηb), on a random quadratic in float64 with
    η·(L + wd) ≤ 1 and μ ∈ [0, 0.99], where both are stable.

    Tolerance: every coordinate of every one of the 100 iterates agrees within
    1e-9 absolute + 1e-9 relative. The forms round differently (about 1e-16 per
    operation), and a stable iteration keeps that drift orders of magnitude below 1e-9.
    """
    problem = _quadratic(seed, dim)
    lr = lr_times_l / (1.0 + weight_decay)  # L ≤ 1, and weight decay adds wd to every curvature
    hyper = {"lr": lr, "momentum": mu, "weight_decay": weight_decay}
    ours = _trajectory(ClassicalMomentum, problem, **hyper)
    theirs = _trajectory(torch.optim.SGD, problem, **hyper)
    for step, (mine, reference) in enumerate(zip(ours, theirs, strict=True)):
        assert torch.allclose(mine, reference, rtol=1e-9, atol=1e-9), f"differs at step {step}"


def test_classical_momentum_applies_the_rule_by_hand() -> None:
    weights = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    optimizer = ClassicalMomentum([weights], lr=0.1, momentum=0.5, weight_decay=0.2)
    velocity = torch.zeros(2, dtype=torch.float64)
    expected = weights.detach().clone()
    for _ in range(3):
        optimizer.zero_grad(set_to_none=True)
        (weights**2).sum().backward()  # g = 2w
        grad = 2 * expected + 0.2 * expected
        velocity = 0.5 * velocity - 0.1 * grad
        expected = expected + velocity
        optimizer.step()
        assert torch.allclose(weights.detach(), expected, rtol=0, atol=1e-15)
        assert torch.allclose(optimizer.state[weights]["velocity"], velocity, rtol=0, atol=1e-15)


def _model_and_batches() -> tuple[torch.nn.Module, list[tuple[torch.Tensor, torch.Tensor]]]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    batches = [(torch.randn(16, 4), torch.randn(16, 1)) for _ in range(20)]
    return model, batches


def _run(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: list[tuple[torch.Tensor, torch.Tensor]],
) -> list[float]:
    losses = []
    for x, y in batches:
        optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def test_state_dict_round_trip_continues_identically() -> None:
    model, batches = _model_and_batches()
    optimizer = ClassicalMomentum(model.parameters(), lr=0.05, momentum=0.9)
    _run(model, optimizer, batches[:10])
    saved_model = copy.deepcopy(model.state_dict())
    saved_optimizer = copy.deepcopy(optimizer.state_dict())
    assert all("velocity" in state for state in saved_optimizer["state"].values())
    uninterrupted = _run(model, optimizer, batches[10:])

    resumed_model = copy.deepcopy(model)
    resumed_model.load_state_dict(saved_model)
    resumed = ClassicalMomentum(resumed_model.parameters(), lr=0.05, momentum=0.9)
    resumed.load_state_dict(saved_optimizer)
    assert _run(resumed_model, resumed, batches[10:]) == uninterrupted

    # Without the velocity the continuation differs, so the state really is what matters.
    fresh_model = copy.deepcopy(model)
    fresh_model.load_state_dict(saved_model)
    fresh = ClassicalMomentum(fresh_model.parameters(), lr=0.05, momentum=0.9)
    assert _run(fresh_model, fresh, batches[10:]) != uninterrupted


@pytest.mark.parametrize(
    ("name", "kind", "momentum", "extra"),
    [
        ("sgd", torch.optim.SGD, 0.0, {"nesterov": False}),
        ("momentum", ClassicalMomentum, 0.9, {}),
        ("sgd_momentum", torch.optim.SGD, 0.9, {"nesterov": False}),
        ("nesterov", torch.optim.SGD, 0.9, {"nesterov": True}),
    ],
)
def test_build_optimizer_by_name(
    name: str, kind: type, momentum: float, extra: dict[str, object]
) -> None:
    config = TrainingConfig(optimizer=name, momentum=0.9, lr=0.3, weight_decay=1e-4)  # type: ignore[arg-type]
    optimizer = build_optimizer([torch.zeros(2, requires_grad=True)], config)
    group = optimizer.param_groups[0]
    assert type(optimizer) is kind
    assert (group["lr"], group["momentum"], group["weight_decay"]) == (0.3, momentum, 1e-4)
    for key, value in extra.items():
        assert group[key] == value


def test_adam_uses_momentum_as_beta1() -> None:
    config = TrainingConfig(optimizer="adam", momentum=0.8, lr=1e-3)
    optimizer = build_optimizer([torch.zeros(2, requires_grad=True)], config)
    assert isinstance(optimizer, torch.optim.Adam)
    assert optimizer.param_groups[0]["betas"] == (0.8, 0.999)


def test_nesterov_with_zero_momentum_is_plain_sgd() -> None:
    config = TrainingConfig(optimizer="nesterov", momentum=0.0)
    optimizer = build_optimizer([torch.zeros(2, requires_grad=True)], config)
    assert optimizer.param_groups[0]["momentum"] == 0.0
