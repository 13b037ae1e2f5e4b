"""The architecture's import boundaries, checked in fresh interpreters."""

from __future__ import annotations

import subprocess
import sys

import pytest

CASES = {
    "service": ["torch", "trainer"],
    "service.app": ["torch", "trainer"],
    "momentum.contract": ["fastapi", "sqlalchemy", "torch"],
    "momentum.client": ["fastapi", "sqlalchemy", "torch", "service", "trainer"],
    "momentum.cli": ["fastapi", "sqlalchemy", "torch", "service", "trainer"],
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
