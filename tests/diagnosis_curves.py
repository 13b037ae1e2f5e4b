"""Synthetic curves with known diagnoses, shared by the rule and route tests."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STEPS = np.arange(2000)
PARAMS = {"optimizer": "momentum", "momentum": 0.99, "lr": 0.05}
RINGING_PERIOD = 40.0
PLATEAU_STEP = 800
SPIKE_STEP = 1234
OVERFIT_STEP = 900
VAL_STEPS = np.arange(0, 2000, 50)


def noisy(values: np.ndarray, level: float = 0.01, seed: int = 0) -> np.ndarray:
    """Multiplicative noise: a loss's noise shrinks with it."""
    rng = np.random.default_rng(seed)
    return np.asarray(values * np.exp(rng.normal(0.0, level, len(values))))


def clean() -> np.ndarray:
    return noisy(2.0 * np.exp(-STEPS / 700) + 0.05)


def ringing() -> np.ndarray:
    trend = 2.0 * np.exp(-STEPS / 800) + 0.1
    wave = 0.3 * np.exp(-STEPS / 1500) * np.cos(2 * np.pi * STEPS / RINGING_PERIOD)
    return noisy(trend + wave)


def flattening() -> np.ndarray:
    return noisy(2.0 * np.exp(-np.minimum(STEPS, PLATEAU_STEP) / 200))


def spiking() -> np.ndarray:
    values = clean()
    values[SPIKE_STEP] *= 5.0
    return values


def exploding() -> np.ndarray:
    values = 2.0 * np.exp(-STEPS / 700)
    values[1500:] = np.nan
    return values


def overfitting_val() -> np.ndarray:
    rise = 0.0004 * np.maximum(VAL_STEPS - OVERFIT_STEP, 0)
    return noisy(2.0 * np.exp(-VAL_STEPS / 300) + 0.2 + rise)


def overfitting_train() -> np.ndarray:
    return noisy(2.0 * np.exp(-STEPS / 500) + 0.01)


@dataclass(frozen=True)
class Case:
    name: str
    loss: np.ndarray
    expected: list[str]
    val_loss: np.ndarray | None = None


def cases() -> list[Case]:
    return [
        Case("clean", clean(), []),
        Case("ringing", ringing(), ["oscillation"]),
        Case("flattening", flattening(), ["plateau"]),
        Case("spiking", spiking(), ["spike"]),
        Case("exploding", exploding(), ["divergence"]),
        Case("overfitting", overfitting_train(), ["overfitting"], overfitting_val()),
    ]
