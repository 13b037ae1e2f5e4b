"""The trainer of each framework, and which frameworks this machine can run.

Imports no framework itself: `trainer_for` imports the one asked for, so a worker
without Keras (or without torch) still runs the others.
"""

from __future__ import annotations

import importlib.util
import os

from momentum.contract.training import Framework
from trainer.results import Trainer

FRAMEWORKS: tuple[Framework, ...] = ("torch", "numpy", "keras")


def trainer_for(framework: str) -> Trainer:
    """`train(config, sink, should_stop=…, on_progress=…)` of `framework`."""
    if framework == "torch":
        from trainer.loop import train as torch_train

        return torch_train
    if framework == "numpy":
        from trainer.numpy_loop import train as numpy_train

        return numpy_train
    if framework == "keras":
        from trainer.keras_loop import train as keras_train

        return keras_train
    raise ValueError(f"unknown framework {framework!r}")


def available_frameworks() -> list[Framework]:
    """The frameworks whose packages are installed here (NumPy always is).

    Keras counts only with a backend to run on: PyTorch, unless `KERAS_BACKEND` names
    another one.
    """
    found: list[Framework] = []
    has_torch = _installed("torch")
    if has_torch:
        found.append("torch")
    found.append("numpy")
    backend = os.environ.get("KERAS_BACKEND", "torch")
    if _installed("keras") and (has_torch if backend == "torch" else _installed(backend)):
        found.append("keras")
    return found


def _installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


__all__ = ["FRAMEWORKS", "available_frameworks", "trainer_for"]
