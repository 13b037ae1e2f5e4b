"""Operational endpoints."""

from __future__ import annotations

from pydantic import BaseModel


class VersionInfo(BaseModel):
    server: str
    contract: str
    database: str
    schema_revision: str | None
