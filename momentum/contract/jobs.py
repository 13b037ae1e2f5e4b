"""Jobs and the worker protocol: submit a training config, claim it under a fenced lease.

A job is one `TrainingConfig` to train, with a run that receives its metrics. Workers
claim jobs, heartbeat to keep their lease, and end them with complete, fail or release.
Every call after the claim carries the claim's `lease_token`; once the lease lapsed and
the job was taken back, that token is refused with 409, so a late worker cannot write
the outcome of a job someone else now owns.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, JsonValue, StrictBool, model_validator

from momentum.contract.common import ContractModel, Name, Status, StorableJsonValue, Text
from momentum.contract.early_stop import EarlyStopped
from momentum.contract.entry_points import (
    DIGEST_PATTERN,
    MAX_PARAMS,
    EntryPointName,
    ParamName,
    ParamValue,
)
from momentum.contract.metrics import MAX_STEP
from momentum.contract.runs import Tags
from momentum.contract.training import DeviceName, Framework, TrainingConfig

LeaseToken = Text
MaxAttempts = Annotated[
    int | None,
    Field(
        strict=True,
        ge=1,
        le=100,
        description="Claims allowed before a lapsed lease fails the job (default: the server's).",
    ),
]


class JobCreate(ContractModel):
    """Exactly one of `config` (the built-in trainer) or `entry_point` (code declared on
    a worker's machine, with `params` checked against its registered definition)."""

    config: TrainingConfig | None = Field(default=None, description="The built-in trainer's.")
    entry_point: EntryPointName | None = Field(
        default=None, description="A registered entry point (GET /entry-points)."
    )
    params: dict[ParamName, ParamValue] = Field(
        default_factory=dict,
        max_length=MAX_PARAMS,
        description="The entry point's params; the service fills in the defaults.",
    )
    name: Name | None = Field(default=None, description="Defaults to `job-<id>`.")
    project: Name = Field(default="default", description="The project of the job's run.")
    tags: Tags = Field(default_factory=dict, description="Tags of the job's run.")
    max_attempts: MaxAttempts = None

    @model_validator(mode="after")
    def _one_kind_of_work(self) -> Self:
        if (self.config is None) == (self.entry_point is None):
            raise ValueError("give exactly one of config (the built-in trainer) or entry_point")
        if self.params and self.entry_point is None:
            raise ValueError("params go with an entry_point; the built-in trainer takes config")
        return self


class EntryPointRef(ContractModel):
    """An entry point as one worker has it: a job goes only where name and digest match."""

    name: EntryPointName
    digest: str = Field(pattern=DIGEST_PATTERN)


class JobPublic(BaseModel):
    """A job as the API shows it. The lease token is never shown: only the claimer has it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str | None
    status: Status
    config: TrainingConfig | None = Field(description="The built-in trainer's; or entry_point.")
    entry_point: str | None = None
    entry_point_digest: str | None = Field(
        default=None, description="The definition the params were checked against."
    )
    params: dict[str, JsonValue] | None = Field(
        default=None, description="An entry-point job's full params, defaults filled in."
    )
    framework: str
    device: str
    attempts: int = Field(description="How many times the job was claimed.")
    max_attempts: int
    lease_lapses: int = Field(description="How many times a worker's lease lapsed.")
    lease_owner: str | None = Field(description="The worker holding (or last holding) it.")
    lease_expires_at: datetime | None
    cancel_requested: bool
    error: str | None
    progress_step: int | None
    progress_total: int | None
    run_id: int | None
    sweep_id: int | None
    summary: dict[str, JsonValue] | None
    early_stopped: EarlyStopped | None = Field(
        default=None,
        description="Set when its sweep's early-stopping rule stopped it; the job still "
        "ends `succeeded` (its curve up to that step is a result).",
    )
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    ended_at: datetime | None


def _torch_only() -> list[Framework]:
    return ["torch"]


class Claim(ContractModel):
    worker_id: Name = Field(description="Stable id of the worker, e.g. `host-1234`.")
    device: DeviceName = Field(
        default="cpu",
        description="`cuda` takes any job; `cpu` or `auto` takes jobs whose device is not cuda.",
    )
    frameworks: list[Framework] = Field(
        default_factory=_torch_only, min_length=1, description="Frameworks it can run."
    )
    entry_points: list[EntryPointRef] = Field(
        default_factory=list,
        max_length=MAX_PARAMS,
        description="Entry points it can run; an entry-point job goes only to a worker "
        "whose entry point has the job's name and digest.",
    )


class ClaimResponse(BaseModel):
    job: JobPublic
    lease_token: LeaseToken
    lease_expires_at: datetime
    run_token: str | None = Field(
        default=None,
        description="A token that may write only this job's run, until the lease ends "
        "(for an entry point's child process; never the worker's token).",
    )
    check_steps: list[int] = Field(
        default_factory=list,
        description="Steps at which the trainer flushes its points and heartbeats before "
        "going on (the rungs of an early-stopping sweep), so a stop decision is made on "
        "time however fast it trains.",
    )


class JobHeartbeat(ContractModel):
    lease_token: LeaseToken = Field(min_length=1, max_length=64)
    step: int | None = Field(
        default=None, strict=True, ge=0, le=MAX_STEP, description="Steps done so far."
    )
    total: int | None = Field(
        default=None, strict=True, ge=0, le=MAX_STEP, description="Steps in all."
    )


class JobHeartbeatReply(BaseModel):
    cancel: bool = Field(description="Cancel was requested: stop, then call /fail.")
    stop: bool = Field(
        default=False,
        description="Its sweep stopped it early: end the step, flush, then call /complete "
        "(an entry point's child gets SIGTERM and its grace period first).",
    )
    lease_expires_at: datetime


class JobComplete(ContractModel):
    lease_token: LeaseToken = Field(min_length=1, max_length=64)
    diverged: StrictBool | None = Field(default=None, description="Sets the run's `diverged`.")
    summary: dict[str, StorableJsonValue] | None = Field(
        default=None, description="Free-form results (final loss, wall time, ...)."
    )


class JobFail(ContractModel):
    lease_token: LeaseToken = Field(min_length=1, max_length=64)
    error: Text = Field(min_length=1, max_length=10_000, description="What went wrong.")
    cancelled: StrictBool = Field(
        default=False,
        description="The worker stopped because cancel was requested: the job ends "
        "`cancelled`, not `failed` (a job with a pending cancel ends cancelled either way).",
    )


class JobRelease(ContractModel):
    """Hand a job back (a worker shutting down): it is queued again for another worker."""

    lease_token: LeaseToken = Field(min_length=1, max_length=64)


class WorkerPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    device: str
    frameworks: list[str]
    current_job_id: int | None
    first_seen_at: datetime
    last_seen_at: datetime = Field(description="Its last claim or heartbeat.")
