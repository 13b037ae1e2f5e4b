"""Momentum Monitor: training-metrics monitoring built for momentum sweeps.

The top package holds the wire contract (`momentum.contract`), the HTTP client and
reporter (`momentum.client`) and the CLI (`momentum.cli`). It never imports the
service, the trainer, FastAPI, SQLAlchemy or torch at module level.

`momentum.Run` and `momentum.MomentumClient` are loaded on first use, so `import
momentum` stays cheap (no httpx) for code that only needs the version or the contract.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
CONTRACT_VERSION = "1"

if TYPE_CHECKING:
    from momentum.client import MomentumClient, Run

_LAZY = {"Run", "MomentumClient"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from momentum import client

        return getattr(client, name)
    raise AttributeError(f"module 'momentum' has no attribute {name!r}")


__all__ = ["CONTRACT_VERSION", "MomentumClient", "Run", "__version__"]
