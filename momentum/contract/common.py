"""Shapes shared by every resource: statuses, list envelopes, errors."""

from __future__ import annotations

import math
import re
from enum import StrEnum
from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue, StringConstraints

T = TypeVar("T")

METRIC_KEY_PATTERN = r"^[A-Za-z0-9_\-./ ]{1,250}$"
METRIC_KEY_RE = re.compile(METRIC_KEY_PATTERN)
MetricKey = Annotated[
    str,
    StringConstraints(pattern=METRIC_KEY_PATTERN),
    Field(
        description="1-250 characters of letters, digits, `_ - . /` and space.",
        examples=["loss", "train/accuracy"],
    ),
]
# PostgreSQL text and JSONB cannot hold the NUL character (SQLite can): every string a
# client may store or search for refuses it, so both backends answer alike.
NO_NUL = r"^[^\x00]*$"
Text = Annotated[str, StringConstraints(pattern=NO_NUL)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=250, pattern=NO_NUL)]
NUL_MESSAGE = "text may not contain the NUL character (\\u0000)"
# Integers a client may store: a signed 64-bit range, what a BIGINT column, SQLite's
# json_extract and every JSON reader in between keep exactly (10**400 overflowed a float
# when indexed or grouped, and was a 500).
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
INT64_MESSAGE = f"integers must lie within the signed 64-bit range {INT64_MIN}..{INT64_MAX}"


def is_int64(value: int) -> bool:
    return INT64_MIN <= value <= INT64_MAX


def _storable(value: Any) -> Any:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise ValueError("NaN and Infinity are not JSON numbers: send a finite number")
        if isinstance(item, int) and not isinstance(item, bool) and not is_int64(item):
            raise ValueError(INT64_MESSAGE)
        if isinstance(item, str) and "\x00" in item:
            raise ValueError(NUL_MESSAGE)
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return value


# Free-form JSON a client sends (run params, a job's summary, a sweep's base and grid).
# Python's json parser reads NaN, Infinity and 1e400, but stored as JSON they would be
# invalid (PostgreSQL refuses them; SQLite keeps text that breaks every later json_extract
# over the table); integers outside int64 (above); and no NUL in any string, as above.
StorableJsonValue = Annotated[JsonValue, AfterValidator(_storable)]


class ContractModel(BaseModel):
    """Request bodies reject unknown fields: a typo must not be silently dropped."""

    model_config = ConfigDict(extra="forbid")


class Status(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({Status.succeeded, Status.failed, Status.cancelled})


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class ErrorItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorBody(BaseModel):
    code: str
    message: str
    detail: list[ErrorItem] = []


class ErrorResponse(BaseModel):
    error: ErrorBody


def error_response(
    code: str, message: str, detail: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "detail": detail or []}}
