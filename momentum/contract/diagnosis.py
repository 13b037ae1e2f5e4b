"""Diagnosis (#21): what the service reads in a run's curve, and what usually helps."""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, Field

FindingKind = Literal["oscillation", "plateau", "spike", "divergence", "overfitting"]
FINDING_KINDS: tuple[str, ...] = get_args(FindingKind)


class Finding(BaseModel):
    kind: FindingKind
    from_step: int
    to_step: int
    detail: dict[str, Any] = Field(
        description="The numbers behind the finding: `period` (oscillation), "
        "`relative_improvement` (plateau), `step`, `value`, `z` (spike), `step` "
        "(divergence), `val_key`, `relative_rise` (overfitting)."
    )
    message: str
    advice: str


class Diagnosis(BaseModel):
    run_id: int
    key: str
    findings: list[Finding]
