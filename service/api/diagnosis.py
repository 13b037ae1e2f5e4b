"""Diagnosis (#21): what a run's curve shows (oscillation, plateau, spike, divergence,
overfitting) and what usually helps, computed from the whole stored series."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from momentum.contract import Diagnosis
from momentum.contract.common import METRIC_KEY_PATTERN
from service.api.runs import RunId, load_run
from service.auth import Scope, requires
from service.deps import SessionDep
from service.diagnosis import diagnose_key
from service.domain_errors import NotFound

router = APIRouter(prefix="/runs/{run_id}/diagnosis", tags=["diagnosis"])

DiagnosedKey = Annotated[
    str,
    Query(
        pattern=METRIC_KEY_PATTERN,
        description="The metric to read; its `val_` twin, if logged, is read for overfitting.",
    ),
]


@router.get("", response_model=Diagnosis, dependencies=[requires(Scope.read)])
def diagnose_run(run_id: RunId, session: SessionDep, key: DiagnosedKey = "loss") -> Diagnosis:
    """Findings in one metric of a run, each with its steps, numbers, message and advice."""
    run = load_run(session, run_id)
    findings = diagnose_key(session, run, key)
    if findings is None:
        raise NotFound(f"metric {key!r} of run", run_id)
    return Diagnosis(run_id=run_id, key=key, findings=findings)
