"""Runs: one training run, its parameters, tags and lifecycle."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, JsonValue, StrictBool, StringConstraints

from momentum.contract.common import NO_NUL, ContractModel, Name, Status, StorableJsonValue
from momentum.contract.early_stop import EarlyStopped
from momentum.contract.values import EncodedValue

TagValue = Annotated[str, StringConstraints(max_length=1000, pattern=NO_NUL)]
Params = dict[Name, JsonValue]
ParamsIn = dict[Name, StorableJsonValue]
Tags = dict[Name, TagValue]


class RunCreate(ContractModel):
    name: Name | None = Field(default=None, description="Defaults to `run-<id>`.")
    project: Name = "default"
    params: ParamsIn = Field(
        default_factory=dict,
        description="Hyperparameters; `optimizer`, `momentum`, `lr` also fill indexed columns.",
    )
    tags: Tags = Field(default_factory=dict)
    external_id: Name | None = Field(
        default=None,
        description="Client-chosen idempotency key: repeating it returns the existing run (200).",
    )
    status: Status = Status.running


class RunUpdate(ContractModel):
    name: Name | None = None
    status: Status | None = None
    diverged: StrictBool | None = None
    params: ParamsIn | None = Field(default=None, description="Replaces the run's params.")
    tags: Tags | None = Field(default=None, description="Replaces the run's tags.")


class RunPublic(BaseModel):
    id: int
    name: str
    project: str
    status: Status
    diverged: bool
    params: Params
    tags: Tags
    external_id: str | None
    optimizer: str | None
    momentum: float | None
    lr: float | None
    sweep_id: int | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    last_heartbeat_at: datetime | None
    lifecycle_stage: Literal["active", "deleted"] = Field(
        default="active",
        description="`deleted`: soft-deleted through MLflow's `runs/delete` (restorable); "
        "such runs are left out of `GET /runs` unless `lifecycle` asks for them.",
    )
    last_step: int | None = Field(description="Highest step logged under any key.")
    latest: dict[str, EncodedValue] = Field(description="Each key's value at its last step.")
    best: dict[str, EncodedValue] = Field(
        default_factory=dict,
        description="Best finite value of each key whose name says which way is better: "
        "the lowest of `…loss` keys, the highest of `…accuracy`/`…acc` keys.",
    )
    early_stopped: EarlyStopped | None = Field(
        default=None,
        description="Its job was stopped early (a sweep's rule, or by hand): at which "
        "step, by which rule, and why. Also its tag `momentum.early_stopped` (the reason).",
    )
    findings: list[str] = Field(
        default_factory=list,
        description="Kinds of the findings its live diagnosis holds, over all keys "
        "(`GET /runs/{id}/diagnosis` tells them in full).",
    )


class RunHeartbeat(BaseModel):
    id: int
    status: Status
    last_heartbeat_at: datetime
