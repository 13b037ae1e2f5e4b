"""Shapes shared by every resource: statuses, list envelopes, errors."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

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
Name = Annotated[str, StringConstraints(min_length=1, max_length=250)]


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
