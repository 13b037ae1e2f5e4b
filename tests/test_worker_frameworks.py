"""Workers advertise the frameworks installed on their machine, or those named."""

from __future__ import annotations

import subprocess
import sys

import pytest

from trainer.frameworks import available_frameworks, trainer_for


def test_every_framework_is_available_in_the_dev_install() -> None:
    assert available_frameworks() == ["torch", "numpy", "keras"]


def test_keras_needs_its_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERAS_BACKEND", "no_such_backend")
    assert "keras" not in available_frameworks()


def test_trainer_for_names_each_framework() -> None:
    assert {trainer_for(name).__module__ for name in ("torch", "numpy", "keras")} == {
        "trainer.loop",
        "trainer.numpy_loop",
        "trainer.keras_loop",
    }
    with pytest.raises(ValueError, match="unknown framework 'jax'"):
        trainer_for("jax")


@pytest.mark.parametrize(
    ("given", "message"),
    [("numpy,tensorflow", "'tensorflow' is not one of torch, numpy, keras"), (",", "at least one")],
)
def test_worker_refuses_frameworks_it_cannot_run(given: str, message: str) -> None:
    argv = [sys.executable, "-m", "momentum.cli", "worker", "--frameworks", given, "--once"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and message in result.stderr, result.stderr
