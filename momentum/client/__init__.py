"""The client side: `MomentumClient` (HTTP), `Run` (the SDK) and its background reporter.

Imports neither FastAPI, SQLAlchemy nor torch, so any training script can use it.
"""

from __future__ import annotations

from momentum.client.http import (
    ContractMismatchWarning,
    MomentumAPIError,
    MomentumClient,
    is_retryable,
)
from momentum.client.reporter import Reporter, ReporterOptions, ReporterStats
from momentum.client.retry import Backoff, Retrying
from momentum.client.run import Run
from momentum.client.sync import SyncResult, sync_spool

__all__ = [
    "Backoff",
    "ContractMismatchWarning",
    "MomentumAPIError",
    "MomentumClient",
    "Reporter",
    "ReporterOptions",
    "ReporterStats",
    "Retrying",
    "Run",
    "SyncResult",
    "is_retryable",
    "sync_spool",
]
