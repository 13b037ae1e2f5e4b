"""The wire contract: pydantic models shared by the service, the client and the trainer.

Imports neither FastAPI, SQLAlchemy nor torch.
"""

from __future__ import annotations

from momentum.contract.common import (
    METRIC_KEY_RE,
    TERMINAL_STATUSES,
    ContractModel,
    ErrorBody,
    ErrorItem,
    ErrorResponse,
    MetricKey,
    Page,
    Status,
    error_response,
)
from momentum.contract.metrics import (
    IngestResult,
    MetricPoint,
    PointBatch,
    SeriesHistory,
    SeriesInfo,
    SeriesList,
)
from momentum.contract.ops import VersionInfo
from momentum.contract.runs import RunCreate, RunHeartbeat, RunPublic, RunUpdate
from momentum.contract.values import EncodedValue, MetricValue, decode_value, encode_value

__all__ = [
    "METRIC_KEY_RE",
    "TERMINAL_STATUSES",
    "ContractModel",
    "EncodedValue",
    "ErrorBody",
    "ErrorItem",
    "ErrorResponse",
    "IngestResult",
    "MetricKey",
    "MetricPoint",
    "MetricValue",
    "Page",
    "PointBatch",
    "RunCreate",
    "RunHeartbeat",
    "RunPublic",
    "RunUpdate",
    "SeriesHistory",
    "SeriesInfo",
    "SeriesList",
    "Status",
    "VersionInfo",
    "decode_value",
    "encode_value",
    "error_response",
]
