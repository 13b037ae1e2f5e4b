"""Momentum Monitor: training-metrics monitoring built for momentum sweeps.

The top package holds the wire contract (`momentum.contract`), the HTTP client and
reporter (`momentum.client`) and the CLI (`momentum.cli`). It never imports the
service, the trainer, FastAPI, SQLAlchemy or torch at module level.
"""

from __future__ import annotations

__version__ = "0.1.0"
CONTRACT_VERSION = "1"

__all__ = ["CONTRACT_VERSION", "__version__"]
