"""One settings object, read by the app factory, the CLI and migrations/env.py."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every field reads `MOMENTUM_<NAME>` from the environment."""

    model_config = SettingsConfigDict(env_prefix="MOMENTUM_", extra="ignore")

    data_dir: Path = Field(default=Path("data"), description="Where the SQLite default lives.")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; e.g. postgresql+psycopg://user:pw@host/db. "
        "Default: SQLite file momentum.sqlite3 in data_dir.",
    )

    artifact_root: Path | None = Field(
        default=None,
        description="Where run artifacts (MLflow's log_artifact...) are kept, a folder per "
        "run. Default: data_dir/artifacts.",
    )
    max_artifact_bytes: int = Field(
        default=1024 * 1024 * 1024,
        ge=1024,
        description="Larger artifact files (one upload) get 413.",
    )

    token: SecretStr | None = Field(default=None, description="Full access.")
    worker_token: SecretStr | None = Field(
        default=None, description="Worker protocol, run creation, metric ingest, reads."
    )
    read_token: SecretStr | None = Field(default=None, description="Reads only.")

    max_body_bytes: int = Field(
        default=32 * 1024 * 1024,
        ge=1024,
        description="Larger ingest bodies (a metrics batch, MLflow's log-batch) get 413.",
    )
    max_small_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Larger bodies on every other route (runs, jobs, sweeps...) get 413; "
        "never more than max_body_bytes.",
    )
    body_deadline_s: float = Field(
        default=60.0,
        gt=0,
        description="A request body not arrived whole this long after the request began "
        "gets 408, however steadily it trickles in.",
    )
    max_points_per_batch: int = Field(
        default=100_000, ge=10_000, description="More points in one ingest request get 413."
    )
    max_page_size: int = Field(
        default=1000, ge=1, le=1000, description="A list's largest `limit`; more gets 422."
    )
    body_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="A request body that stalls this long (no byte arrives) gets 408.",
    )
    # What one read may answer and one run may hold (SECURITY.md): every read that
    # returns series is bounded by default, and a run's key count bounds run lists.
    default_history_points: int = Field(
        default=100_000,
        ge=1,
        description="max_points of a history read (GET /runs/{id}/metrics/{key}) that "
        "names none: series up to this long come back whole, longer ones downsampled.",
    )
    default_compare_points: int = Field(
        default=10_000,
        ge=1,
        description="max_points per series of a comparison (GET /compare) that names none.",
    )
    max_points_per_read: int = Field(
        default=100_000,
        ge=1,
        description="The largest max_points a history read or comparison may ask for "
        "(per series); more gets 422. Full resolution beyond it: step ranges or export.csv.",
    )
    max_keys_per_run: int = Field(
        default=1_000,
        ge=1,
        description="Most distinct metric keys one run may have; an ingest that would "
        "pass it gets 422 and stores nothing.",
    )

    sqlite_synchronous: Literal["NORMAL", "FULL"] = Field(
        default="NORMAL",
        description="NORMAL survives a killed process; FULL also survives a power cut.",
    )
    sqlite_busy_timeout_ms: int = Field(default=30_000, ge=0)
    pool_size: int = Field(default=10, ge=1)
    pool_max_overflow: int = Field(default=10, ge=0)
    pool_timeout_s: float = Field(default=10.0, gt=0)

    run_heartbeat_timeout_s: float = Field(
        default=300.0, gt=0, description="A heartbeating run silent this long becomes failed."
    )
    reaper_interval_s: float = Field(default=5.0, gt=0)

    lease_seconds: float = Field(
        default=30.0,
        gt=0,
        description="A claimed job's lease; each heartbeat extends it by this much.",
    )
    job_max_attempts: int = Field(
        default=3, ge=1, le=100, description="Claims a job gets before a lapsed lease fails it."
    )
    max_job_log_bytes: int = Field(
        default=8 * 1024 * 1024,
        ge=1024,
        description="Most bytes of a job's log kept: the first half as its head, then the "
        "newest output; the middle is dropped (GET /jobs/{id}/logs says `truncated`).",
    )
    max_grid_size: int = Field(default=256, ge=1, description="Most jobs one sweep may create.")
    max_compare_runs: int = Field(
        default=100,
        ge=1,
        description="Most run ids one comparison or export may name (a whole sweep, up "
        "to max_grid_size, always fits; GET /compare then thins each series further).",
    )

    max_event_streams: int = Field(
        default=100, ge=1, description="Most open GET /events streams per service process."
    )
    event_poll_interval_s: float = Field(
        default=0.5, gt=0, le=10, description="How often each event stream reads new events."
    )
    event_stream_max_s: float = Field(
        default=25.0,
        gt=0,
        description="A stream ends after this long and the browser resumes it by "
        "Last-Event-ID: no connection outlives a deploy or pins a replica for good.",
    )
    event_retention_s: float = Field(
        default=3600.0, gt=0, description="Events older than this are pruned."
    )
    event_max_rows: int = Field(default=100_000, ge=100, description="Events kept at most.")
    diagnosis_interval_s: float = Field(
        default=2.0,
        ge=0,
        description="How often runs with new points are diagnosed (#21); a run whose "
        "analysis is slow waits longer (service/diagnosis.py). 0 turns live diagnosis off.",
    )

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'momentum.sqlite3').resolve()}"

    @property
    def compare_run_cap(self) -> int:
        """Run ids one comparison may name: max_compare_runs, or a whole sweep when
        max_grid_size is larger (a sweep's runs compare together)."""
        return max(self.max_compare_runs, self.max_grid_size)

    @property
    def artifacts_dir(self) -> Path:
        return (self.artifact_root or self.data_dir / "artifacts").resolve()

    @property
    def is_sqlite(self) -> bool:
        return self.sqlalchemy_url.startswith("sqlite")

    @property
    def auth_enabled(self) -> bool:
        return any(t is not None for t in (self.token, self.worker_token, self.read_token))
