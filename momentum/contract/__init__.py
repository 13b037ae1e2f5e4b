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
from momentum.contract.compare import (
    BestSetting,
    CompareResult,
    CompareSeries,
    CompareSummary,
    GroupComparison,
    GroupCurve,
    GroupSummary,
    RunSummary,
    Stat,
)
from momentum.contract.diagnosis import FINDING_KINDS, Diagnosis, Finding, FindingKind
from momentum.contract.entry_points import (
    EntryPointDefinition,
    EntryPointPublic,
    EntryPointRegistration,
    ParamErrors,
    ParamSpec,
)
from momentum.contract.job_logs import JobLogAck, JobLogAppend, JobLogPage
from momentum.contract.jobs import (
    Claim,
    ClaimResponse,
    EarlyStopped,
    EntryPointRef,
    JobComplete,
    JobCreate,
    JobFail,
    JobHeartbeat,
    JobHeartbeatReply,
    JobPublic,
    JobRelease,
    WorkerPublic,
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
from momentum.contract.sweeps import (
    GridError,
    SweepCreate,
    SweepPublic,
    expand_grid,
    grid_size,
    sweep_status,
)
from momentum.contract.training import TrainingConfig
from momentum.contract.values import EncodedValue, MetricValue, decode_value, encode_value

__all__ = [
    "FINDING_KINDS",
    "Diagnosis",
    "Finding",
    "FindingKind",
    "EntryPointDefinition",
    "EntryPointPublic",
    "EntryPointRef",
    "EntryPointRegistration",
    "ParamErrors",
    "ParamSpec",
    "METRIC_KEY_RE",
    "TERMINAL_STATUSES",
    "BestSetting",
    "Claim",
    "ClaimResponse",
    "EarlyStopped",
    "CompareResult",
    "CompareSeries",
    "CompareSummary",
    "ContractModel",
    "EncodedValue",
    "ErrorBody",
    "ErrorItem",
    "ErrorResponse",
    "GridError",
    "GroupComparison",
    "GroupCurve",
    "GroupSummary",
    "IngestResult",
    "JobComplete",
    "JobCreate",
    "JobFail",
    "JobHeartbeat",
    "JobHeartbeatReply",
    "JobPublic",
    "JobRelease",
    "JobLogAck",
    "JobLogAppend",
    "JobLogPage",
    "MetricKey",
    "MetricPoint",
    "MetricValue",
    "Page",
    "PointBatch",
    "RunCreate",
    "RunHeartbeat",
    "RunPublic",
    "RunSummary",
    "RunUpdate",
    "SeriesHistory",
    "SeriesInfo",
    "SeriesList",
    "Stat",
    "Status",
    "SweepCreate",
    "SweepPublic",
    "TrainingConfig",
    "VersionInfo",
    "WorkerPublic",
    "decode_value",
    "encode_value",
    "error_response",
    "expand_grid",
    "grid_size",
    "sweep_status",
]
