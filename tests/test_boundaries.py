"""The architecture's import boundaries, checked in fresh interpreters."""

from __future__ import annotations

import subprocess
import sys

import pytest

CASES = {
    "service": ["torch", "keras", "trainer"],
    "service.app": ["torch", "keras", "trainer"],
    "momentum.contract": ["fastapi", "sqlalchemy", "torch"],
    "momentum.client": ["fastapi", "sqlalchemy", "torch", "keras", "service", "trainer"],
    "momentum.cli": ["fastapi", "sqlalchemy", "torch", "keras", "service", "trainer"],
    # The Keras callback runs on torch: never TensorFlow or JAX, never the server side.
    "momentum.keras": ["tensorflow", "jax", "fastapi", "sqlalchemy", "service", "trainer"],
    # The NumPy trainer is pure NumPy; the framework table imports no framework.
    "trainer.numpy_loop": ["torch", "keras", "service", "fastapi"],
    "trainer.frameworks": ["torch", "keras", "service"],
    "trainer.keras_loop": ["torch", "keras", "tensorflow", "jax", "service"],
}


@pytest.mark.parametrize("module", sorted(CASES))
def test_module_does_not_pull_in_forbidden_packages(module: str) -> None:
    forbidden = CASES[module]
    code = (
        f"import sys, {module}\n"
        f"bad = [m for m in {forbidden!r} if m in sys.modules]\n"
        "print(','.join(bad))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "", f"{module} imported {result.stdout.strip()}"
