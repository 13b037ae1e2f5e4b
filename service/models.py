"""Tables. The schema changes only through Alembic migrations built from these models."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.expression import false

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JsonDocument: JSON = JSON().with_variant(JSONB(), "postgresql")
# The indexed copy of params["optimizer"]; a longer name stays in params only.
OPTIMIZER_LENGTH = 64
# The largest id a row can have: ids are INTEGER (32-bit signed) columns.
MAX_ROW_ID = 2**31 - 1
# The longest entry-point name (momentum.contract.entry_points.ENTRY_POINT_PATTERN).
ENTRY_POINT_LENGTH = 100
# A job's framework when it runs an entry point: not a Framework, so no claim's
# `frameworks` can match it; such jobs are matched by entry point name and digest.
ENTRY_POINT_FRAMEWORK = "entry_point"
# MLflow's lifecycle stages of runs and experiments.
ACTIVE, DELETED = "active", "deleted"


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC (SQLite has no time zones) and hands back aware UTC datetimes."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Sweep(Base):
    __tablename__ = "sweeps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(250))
    base: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    grid: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    # A sweep of a registered entry point: base and grid are its params (else TrainingConfig's).
    entry_point: Mapped[str | None] = mapped_column(String(ENTRY_POINT_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # Adaptive sweeps (#18): how jobs are chosen, the budget, and what is optimized.
    strategy: Mapped[str] = mapped_column(String(16), default="grid", server_default="grid")
    space: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument)
    objective: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument)
    early_stop: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument)
    # None on sweeps made before #18: every job was queued at creation.
    max_jobs: Mapped[int | None] = mapped_column(Integer)
    parallelism: Mapped[int | None] = mapped_column(Integer)
    search_seed: Mapped[int | None] = mapped_column(Integer)
    # True while the sweep may still create jobs (a claim or a job's end tops it up).
    searching: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # project, tags and max_attempts of the jobs it creates later.
    job_defaults: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument)


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_project_created_at", "project", "created_at"),
        # The run list's sorts end in id: with it in the index a page at any offset is
        # read in order from the index, not sorted out of every matching run.
        Index("ix_runs_created_at_id", "created_at", "id"),
        Index("ix_runs_momentum_id", "momentum", "id"),
        # `q` (text in the name, ILIKE '%…%'): trigrams on PostgreSQL (pg_trgm; a plain
        # index where the extension cannot be created, see migration 0008), plain elsewhere.
        Index(
            "ix_runs_name",
            "name",
            postgresql_using="gin",
            postgresql_ops={"name": "gin_trgm_ops"},
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project: Mapped[str] = mapped_column(String(250))
    name: Mapped[str] = mapped_column(String(250))
    external_id: Mapped[str | None] = mapped_column(String(250), unique=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    diverged: Mapped[bool] = mapped_column(Boolean, default=False)
    params: Mapped[dict[str, Any]] = mapped_column(JsonDocument, default=dict)
    tags: Mapped[dict[str, str]] = mapped_column(JsonDocument, default=dict)
    # Copies of params["optimizer"|"momentum"|"lr"], indexed: comparisons group and filter on them.
    optimizer: Mapped[str | None] = mapped_column(String(OPTIMIZER_LENGTH), index=True)
    momentum: Mapped[float | None] = mapped_column(Float)
    lr: Mapped[float | None] = mapped_column(Float)
    sweep_id: Mapped[int | None] = mapped_column(
        ForeignKey("sweeps.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Its job's EarlyStopped verdict ({"step", "rule", "reason"}), when one was stopped early.
    early_stopped: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument)
    # MLflow's soft delete (`runs/delete`, `runs/restore`): a deleted run is hidden from
    # /api/v1 lists unless asked for; /api/v1's DELETE removes the row for good.
    lifecycle_stage: Mapped[str] = mapped_column(String(16), default=ACTIVE, server_default=ACTIVE)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The user MLflow's `runs/create` names (its client sends the login, or "unknown").
    user_id: Mapped[str | None] = mapped_column(String(250))


class Series(Base):
    """One metric key of one run; points refer to it by integer id."""

    __tablename__ = "series"
    __table_args__ = (UniqueConstraint("run_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(250))
    # Steps below this live in point_blocks, steps at or above it in points.
    sealed_until: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # The highest step and its value (NULL with a step: NaN), kept at ingest so run
    # lists read them without touching points or blocks.
    last_step: Mapped[int | None] = mapped_column(BigInteger)
    last_value: Mapped[float | None] = mapped_column(Float)
    # How many point_chunks rows the block of last_step holds (when to fold them).
    tail_chunks: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Point(Base):
    """The hot table: one clustered key (series_id, step), no rowid on SQLite.

    `value` NULL means NaN, on both backends: SQLite cannot store a NaN REAL (it
    reads back NULL), so PostgreSQL follows the same rule and both answer alike.
    ±Infinity is stored natively by both.
    """

    __tablename__ = "points"
    __table_args__ = {"sqlite_with_rowid": False}

    series_id: Mapped[int] = mapped_column(
        ForeignKey("series.id", ondelete="CASCADE"), primary_key=True
    )
    step: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    value: Mapped[float | None] = mapped_column(Float)
    wall_time: Mapped[float] = mapped_column(Float)


class PointBlock(Base):
    """A sealed block of a series' points as three packed arrays (see storage/blocks.py)."""

    __tablename__ = "point_blocks"

    series_id: Mapped[int] = mapped_column(
        ForeignKey("series.id", ondelete="CASCADE"), primary_key=True
    )
    block: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    first_step: Mapped[int] = mapped_column(BigInteger)
    last_step: Mapped[int] = mapped_column(BigInteger)
    count: Mapped[int] = mapped_column(Integer)
    # Extremes of the block's finite values (NULL: none), so "best loss" is an aggregate
    # over block rows instead of a read of every blob.
    min_value: Mapped[float | None] = mapped_column(Float)
    max_value: Mapped[float | None] = mapped_column(Float)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class PointSummary(Base):
    """Zoom summaries of one block's points (storage/cells.py): per 64 points (`cells`)
    and of the whole block (`summary`), written with the block in its transaction. A
    table of their own: on SQLite a column stored after a block's ~100 KB `data` is
    reached only by walking its overflow pages (a read of every point's bytes again)."""

    __tablename__ = "point_summaries"

    series_id: Mapped[int] = mapped_column(
        ForeignKey("series.id", ondelete="CASCADE"), primary_key=True
    )
    block: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    cells: Mapped[bytes] = mapped_column(LargeBinary)
    summary: Mapped[bytes] = mapped_column(LargeBinary)


class PointChunk(Base):
    """A series' newest points as one batch appended them, in the layout of a block;
    they fold into their block later (see storage/blocks.py). A rowid table on SQLite:
    its rows are blobs of kilobytes, which WITHOUT ROWID stores poorly."""

    __tablename__ = "point_chunks"

    series_id: Mapped[int] = mapped_column(
        ForeignKey("series.id", ondelete="CASCADE"), primary_key=True
    )
    first_step: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    last_step: Mapped[int] = mapped_column(BigInteger)
    count: Mapped[int] = mapped_column(Integer)
    min_value: Mapped[float | None] = mapped_column(Float)
    max_value: Mapped[float | None] = mapped_column(Float)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_status_id", "status", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str | None] = mapped_column(String(250))
    # The built-in trainer's TrainingConfig; `{}` for an entry-point job (kept NOT NULL:
    # loosening it would make SQLite copy the table, and dropping `jobs` cascades).
    config: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    status: Mapped[str] = mapped_column(String(16))
    # ENTRY_POINT_FRAMEWORK for an entry-point job: no claim's frameworks ever name it.
    framework: Mapped[str] = mapped_column(String(32), default="torch")
    device: Mapped[str] = mapped_column(String(16), default="auto")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    lease_token: Mapped[str | None] = mapped_column(String(64))
    lease_owner: Mapped[str | None] = mapped_column(String(250))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_lapses: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text)
    progress_step: Mapped[int | None] = mapped_column(BigInteger)
    progress_total: Mapped[int | None] = mapped_column(BigInteger)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument)
    run_id: Mapped[int | None] = mapped_column(
        ForeignKey("runs.id", ondelete="SET NULL"), index=True
    )
    sweep_id: Mapped[int | None] = mapped_column(
        ForeignKey("sweeps.id", ondelete="CASCADE"), index=True
    )
    # An entry-point job: the definition (name, digest) its params were checked against,
    # and the full params; a claim must name the same name and digest.
    entry_point: Mapped[str | None] = mapped_column(String(ENTRY_POINT_LENGTH))
    entry_point_digest: Mapped[str | None] = mapped_column(String(64))
    params: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument)
    # The EarlyStopped verdict (service/storage/early_stop.py). Set on a running job it
    # is the stop request its worker hears in the heartbeat reply; the job then ends
    # `succeeded`, keeping it.
    early_stopped: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class EntryPoint(Base):
    """One registered definition of an entry point: (name, digest) is unique. The newest
    registration of a name (`updated_at`, then id) is its current definition; older
    digests stay, so jobs submitted under them keep their meaning."""

    __tablename__ = "entry_points"
    __table_args__ = (UniqueConstraint("name", "digest"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(ENTRY_POINT_LENGTH))
    digest: Mapped[str] = mapped_column(String(64))
    # EntryPointDefinition's JSON: command (shown, never run here), total_param, params.
    definition: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class EntryPointWorker(Base):
    """A worker that registered this definition (no foreign key to `workers`: a worker
    registers at start, before its first claim creates its row)."""

    __tablename__ = "entry_point_workers"

    entry_point_id: Mapped[int] = mapped_column(
        ForeignKey("entry_points.id", ondelete="CASCADE"), primary_key=True
    )
    worker_id: Mapped[str] = mapped_column(String(250), primary_key=True)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class JobLog(Base):
    """A job's log as a whole (service/storage/job_logs.py): its length, what is kept of
    it, and where the current attempt's output begins. Its text is in job_log_chunks."""

    __tablename__ = "job_logs"

    job_id: Mapped[int] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    # The attempt whose output arrives now, and where in the log that output begins:
    # a worker's offsets count from the start of its own attempt.
    attempt: Mapped[int] = mapped_column(Integer)
    attempt_start: Mapped[int] = mapped_column(BigInteger)
    # Bytes of the whole log (dropped ones included), of it kept, of its head.
    size: Mapped[int] = mapped_column(BigInteger)
    stored_bytes: Mapped[int] = mapped_column(BigInteger)
    head_bytes: Mapped[int] = mapped_column(BigInteger)


class JobLogChunk(Base):
    """A piece of a job's log, from byte `start` of it, `nbytes` long in UTF-8."""

    __tablename__ = "job_log_chunks"

    job_id: Mapped[int] = mapped_column(
        ForeignKey("job_logs.job_id", ondelete="CASCADE"), primary_key=True
    )
    start: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    nbytes: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)


class Worker(Base):
    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(250), primary_key=True)
    device: Mapped[str] = mapped_column(String(16))
    frameworks: Mapped[list[str]] = mapped_column(JsonDocument, default=list)
    current_job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Event(Base):
    """Append-only feed of changes for GET /events: written in the transaction that made
    the change, read by every replica's streams (see service/events.py)."""

    __tablename__ = "events"
    # AUTOINCREMENT: SQLite would otherwise reuse the ids of pruned rows, and a client
    # resuming from Last-Event-ID would skip the new events that got them.
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(16))
    run_id: Mapped[int | None] = mapped_column(Integer)
    job_id: Mapped[int | None] = mapped_column(Integer)
    payload: Mapped[dict[str, Any]] = mapped_column(JsonDocument)


class Experiment(Base):
    """An MLflow experiment: a stable integer id for one project (service/mlflow/).
    Experiment 0, "Default", is the project "default" and always exists."""

    __tablename__ = "experiments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(250), unique=True)
    project: Mapped[str] = mapped_column(String(250), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lifecycle_stage: Mapped[str] = mapped_column(String(16), default=ACTIVE, server_default=ACTIVE)
    artifact_location: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[dict[str, str]] = mapped_column(JsonDocument, default=dict, server_default="{}")


# Tables kept in modules of their own, registered with Base here: MLflow's datasets and
# run inputs (service/mlflow/datasets.py); sweep trials, rung decisions and run findings.
from service import models_mlflow as _models_mlflow  # noqa: E402, F401
from service.models_analysis import RunFinding, SweepRung, SweepTrial  # noqa: E402, F401
