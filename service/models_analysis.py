"""Tables of the analyses built on runs: a random or tpe sweep's trials and its rung
decisions (service/storage/search.py, rungs.py), and each run's diagnosis findings
(service/diagnosis.py). Imported at the end of service/models.py, which re-exports them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from service.models import Base, JsonDocument, UTCDateTime, utcnow


class SweepTrial(Base):
    """One point a random or tpe sweep sampled: its params, its jobs (one per grid copy)
    and, once they end, its objective. The sampler's history is rebuilt from these rows."""

    __tablename__ = "sweep_trials"

    sweep_id: Mapped[int] = mapped_column(
        ForeignKey("sweeps.id", ondelete="CASCADE"), primary_key=True
    )
    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    params: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    # running, complete, pruned (a copy was stopped early) or failed (invalid or failed).
    state: Mapped[str] = mapped_column(String(16))
    value: Mapped[float | None] = mapped_column(Float)
    job_ids: Mapped[list[int]] = mapped_column(JsonDocument, default=list)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SweepRung(Base):
    """A run's value at a rung of its sweep's early-stopping rule, and the verdict: the
    primary key makes a second decision about the same rung impossible."""

    __tablename__ = "sweep_rungs"

    sweep_id: Mapped[int] = mapped_column(
        ForeignKey("sweeps.id", ondelete="CASCADE"), primary_key=True
    )
    job_id: Mapped[int] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    step: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    value: Mapped[float | None] = mapped_column(Float)
    cutoff: Mapped[float | None] = mapped_column(Float)
    # How many runs (this one included) had reached the rung when it was decided.
    reached: Mapped[int] = mapped_column(Integer)
    stopped: Mapped[bool] = mapped_column(Boolean, default=False)
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RunFinding(Base):
    """What the diagnosis (service/diagnosis.py) last read in one key of a run: replaced
    whole each time that key is diagnosed again. The run list filters on `kind`."""

    __tablename__ = "run_findings"
    __table_args__ = (
        Index("ix_run_findings_run_id_key", "run_id", "key"),
        Index("ix_run_findings_kind_run_id", "kind", "run_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(250))
    kind: Mapped[str] = mapped_column(String(16))
    from_step: Mapped[int] = mapped_column(BigInteger)
    to_step: Mapped[int] = mapped_column(BigInteger)
    detail: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    message: Mapped[str] = mapped_column(Text)
    advice: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
