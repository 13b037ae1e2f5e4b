"""TEMPORARY stand-in for the stop-path branch's module (removed before merging it)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from momentum.contract import EarlyStopped
from service.models import Job


def stop_job(session: Session, job: Job, verdict: EarlyStopped) -> None:
    """Recorded by the stop-path branch: the job's and run's verdict, the stop reply."""
