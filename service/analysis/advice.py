"""Advice grounded in the heavy-ball picture, from the run's own params where it has them.

Heavy ball (v ← μ·v − lr·g; w ← w + v) on a quadratic with curvature λ moves like a
damped oscillator: each step rotates the error by θ, cos θ = (1 + μ − lr·λ) / (2√μ),
and shrinks it by √μ (when |cos θ| < 1, the underdamped case). The loss, a square of the
error, then rings with a period of about π / θ steps. Along flat directions the same
rule takes an effective step of lr / (1 − μ): what momentum buys, and overshoots with.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# trainer/datasets.py's RAVINE_MAX_CURVATURE (the service never imports the trainer; a
# test checks the two agree). The ravine's other curvatures lie below it, log-spaced down
# to it / condition_number; the largest carries the most loss, so it sets the ringing.
RAVINE_MAX_CURVATURE = 1.0
# Optimizers whose weights follow the heavy-ball rule exactly (PyTorch's form differs
# only in where lr multiplies, which gives the same weights for a fixed lr).
HEAVY_BALL = frozenset({"momentum", "sgd_momentum"})
WITH_MOMENTUM = HEAVY_BALL | {"nesterov"}
# Momentum an oscillating run is pointed to, and the least a crawling one is.
CALMER_MOMENTUM = 0.9
BRISK_MOMENTUM = 0.9


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


@dataclass(frozen=True)
class Hyper:
    """The run's params that the advice reads (None: not logged)."""

    optimizer: str | None
    momentum: float | None
    lr: float | None
    dataset: str | None
    weight_decay: float | None

    @classmethod
    def of(cls, params: dict[str, Any]) -> Hyper:
        optimizer, dataset = params.get("optimizer"), params.get("dataset")
        return cls(
            optimizer if isinstance(optimizer, str) else None,
            _number(params.get("momentum")),
            _number(params.get("lr")),
            dataset if isinstance(dataset, str) else None,
            _number(params.get("weight_decay")),
        )

    @property
    def mu(self) -> float | None:
        """The velocity decay in effect: plain SGD ignores a logged momentum."""
        if self.optimizer == "sgd":
            return 0.0
        if self.optimizer == "adam":
            return None  # β₁ averages gradients; it is no heavy-ball velocity
        return self.momentum

    @property
    def effective_step(self) -> float | None:
        mu = self.mu
        if self.lr is None or mu is None or not 0.0 <= mu < 1.0:
            return None
        return self.lr / (1.0 - mu)

    def settings(self) -> str:
        """`(μ=0.99, lr=0.05)`, naming what is known; empty if nothing is."""
        parts = [f"optimizer={self.optimizer}"] if self.optimizer not in (None, *HEAVY_BALL) else []
        if self.mu is not None:
            parts.append(f"μ={self.mu:g}")
        if self.lr is not None:
            parts.append(f"lr={self.lr:g}")
        return f" ({', '.join(parts)})" if parts else ""

    def step_note(self) -> str:
        step = self.effective_step
        return "" if step is None else f"; the effective step lr/(1−μ) is {step:.3g}"


def theoretical_period(hyper: Hyper) -> float | None:
    """The loss's ringing period that heavy-ball theory predicts on `ravine`, or None."""
    mu, lr = hyper.mu, hyper.lr
    if hyper.dataset != "ravine" or hyper.optimizer not in HEAVY_BALL:
        return None
    if mu is None or lr is None or not 0.0 < mu < 1.0:
        return None
    cosine = (1.0 + mu - lr * RAVINE_MAX_CURVATURE) / (2.0 * math.sqrt(mu))
    if not -1.0 < cosine < 1.0:
        return None  # overdamped (or unstable): no ringing
    return math.pi / math.acos(cosine)


def _oscillation(hyper: Hyper, detail: dict[str, Any]) -> str:
    mu = hyper.mu
    text = "ringing like this is typical of momentum too high for the step size" + hyper.settings()
    if mu is not None and 0.0 < mu < 1.0:
        half_life = math.log(2.0) / -math.log(math.sqrt(mu))
        text += (
            f": μ damps each swing only by √μ={math.sqrt(mu):.3g} a step (its amplitude "
            f"halves every {half_life:.0f} steps){hyper.step_note()}"
        )
        calmer = CALMER_MOMENTUM if mu > CALMER_MOMENTUM else max(0.0, round(mu - 0.2, 2))
        return text + f"; try μ={calmer:g}, or halve lr"
    return text + ": lower the momentum (e.g. μ=0.9), or halve lr"


def _plateau(hyper: Hyper, detail: dict[str, Any]) -> str:
    mu = hyper.mu
    if mu is not None and mu < BRISK_MOMENTUM:
        gain = (1.0 - mu) / (1.0 - BRISK_MOMENTUM)
        return (
            f"a curve that crawls{hyper.settings()} is typical of too little momentum along "
            f"flat directions{hyper.step_note()}; μ={BRISK_MOMENTUM:g} takes a {gain:.3g}× "
            f"larger effective step there: try μ={BRISK_MOMENTUM:g}, or a larger lr"
        )
    return (
        f"the curve has stopped improving{hyper.settings()}{hyper.step_note()}: if it is "
        "not yet good enough, lower lr (a decay schedule) to settle deeper, or raise lr "
        "if the effective step is tiny; otherwise training can stop here"
    )


def _spike(hyper: Hyper, detail: dict[str, Any]) -> str:
    mu = hyper.mu
    memory = (
        f"; with μ={mu:g} the kick it gave persists for about {1.0 / (1.0 - mu):.0f} steps"
        if mu is not None and 0.0 < mu < 1.0
        else ""
    )
    return (
        f"one bad step: an unusual batch, or a step size near the edge of stability"
        f"{hyper.settings()}{hyper.step_note()}{memory}; if spikes recur, lower lr or "
        "clip gradients"
    )


def _divergence(hyper: Hyper, detail: dict[str, Any]) -> str:
    return (
        f"the step is too large for the curvature{hyper.settings()}{hyper.step_note()}: "
        "heavy ball is stable only while lr·λ < 2(1 + μ) for every curvature λ; halve lr "
        "(or lower μ) and restart"
    )


def _overfitting(hyper: Hyper, detail: dict[str, Any]) -> str:
    decay = f" (now {hyper.weight_decay:g})" if hyper.weight_decay is not None else ""
    return (
        f"the model has learned what the training data can teach: keep the weights from "
        f"step {detail.get('best_step')} (early stopping), add weight decay{decay} or more "
        "data; momentum speeds the training loss's fall but does not cause this"
    )


ADVICE: dict[str, Callable[[Hyper, dict[str, Any]], str]] = {
    "oscillation": _oscillation,
    "plateau": _plateau,
    "spike": _spike,
    "divergence": _divergence,
    "overfitting": _overfitting,
}


def advise(kind: str, hyper: Hyper, detail: dict[str, Any]) -> str:
    return ADVICE[kind](hyper, detail)
