"""Stored findings (#21): each diagnosed key of a run keeps what its last diagnosis read."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from momentum.contract import Finding
from service import events
from service.models import RunFinding, utcnow

_FINDINGS = RunFinding.metadata.tables["run_findings"]


def stored(session: Session, run_id: int, key: str) -> list[Finding]:
    rows = session.scalars(
        select(RunFinding)
        .where(RunFinding.run_id == run_id, RunFinding.key == key)
        .order_by(RunFinding.id)
    )
    return [
        Finding(
            kind=row.kind,  # type: ignore[arg-type]  # only FindingKinds are stored
            from_step=row.from_step,
            to_step=row.to_step,
            detail=row.detail,
            message=row.message,
            advice=row.advice,
        )
        for row in rows
    ]


def _signature(findings: Sequence[Finding]) -> list[tuple[str, int]]:
    """What an announcement is about: which findings, from where. A period measured
    again one step longer is no news; a new or vanished finding is."""
    return [(f.kind, f.from_step) for f in findings]


def replace(session: Session, run_id: int, key: str, findings: Sequence[Finding]) -> bool:
    """Store `findings` for (run, key) in place of what was there; a `diagnosis` event
    when they differ in kind or start. Returns whether anything was written."""
    before = stored(session, run_id, key)
    if before == list(findings):
        return False
    session.execute(delete(RunFinding).where(RunFinding.run_id == run_id, RunFinding.key == key))
    if findings:
        now = utcnow()
        rows = [
            {**f.model_dump(), "run_id": run_id, "key": key, "created_at": now} for f in findings
        ]
        session.execute(insert(_FINDINGS), rows)
    if _signature(before) != _signature(findings):
        events.record(session, "diagnosis", announcement(run_id, key, findings), run_id=run_id)
    return True


def announcement(run_id: int, key: str, findings: Sequence[Finding]) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "key": key,
        "kinds": sorted({f.kind for f in findings}),
        "findings": [
            {"kind": f.kind, "from_step": f.from_step, "to_step": f.to_step, "message": f.message}
            for f in findings
        ],
    }


def kinds_by_run(session: Session, run_ids: Sequence[int]) -> dict[int, list[str]]:
    """Each run's finding kinds over all its diagnosed keys, for a page of runs at once."""
    if not run_ids:
        return {}
    statement = (
        select(RunFinding.run_id, RunFinding.kind)
        .where(RunFinding.run_id.in_(run_ids))
        .distinct()
        .order_by(RunFinding.run_id, RunFinding.kind)
    )
    out: dict[int, list[str]] = {}
    for run_id, kind in session.execute(statement):
        out.setdefault(run_id, []).append(kind)
    return out
