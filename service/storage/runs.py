"""Data access for runs. Functions take a session and only flush; the caller commits."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, String, and_, cast, exists, func, literal, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from momentum.contract import TERMINAL_STATUSES, RunCreate, RunUpdate, Status
from momentum.contract.common import INT64_MESSAGE, is_int64
from service import events, indexed_params
from service.domain_errors import Forbidden
from service.models import Job, Run, RunFinding, Series, utcnow

# What a `param=name:value` filter compares with: one JSON scalar, or text.
ParamValue = str | int | float | bool | None


@dataclass(frozen=True)
class RunFilters:
    project: str | None = None
    status: Status | None = None
    optimizer: str | None = None
    momentum_min: float | None = None
    momentum_max: float | None = None
    sweep_id: int | None = None
    tags: list[tuple[str, str]] = field(default_factory=list)
    params: list[tuple[str, ParamValue]] = field(default_factory=list)
    q: str | None = None
    finding: str | None = None
    # MLflow's lifecycle stages shown: soft-deleted runs only when asked for.
    lifecycle: tuple[str, ...] = ("active",)
    ids: list[int] | None = None  # only these runs (a comparison's selection)


SORTS: dict[str, tuple[ColumnElement[Any], ...]] = {
    "created_at": (Run.created_at.asc(), Run.id.asc()),
    "-created_at": (Run.created_at.desc(), Run.id.desc()),
    "name": (Run.name.asc(), Run.id.asc()),
    "-name": (Run.name.desc(), Run.id.desc()),
    "momentum": (Run.momentum.asc().nulls_last(), Run.id.asc()),
    "-momentum": (Run.momentum.desc().nulls_last(), Run.id.desc()),
}


def indexed_columns(params: dict[str, Any]) -> dict[str, Any]:
    """The params that comparisons filter and group on, copied into indexed columns."""
    return indexed_params.indexed_columns(params)


def _status_times(run: Run, status: Status, now: datetime) -> None:
    if status == Status.running and run.started_at is None:
        run.started_at = now
    if status in TERMINAL_STATUSES and run.ended_at is None:
        run.ended_at = now


def _insert(session: Session) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def create_run(session: Session, body: RunCreate) -> tuple[Run, bool]:
    """Returns (run, created). A repeated external_id returns the existing run."""
    if body.external_id is not None:
        existing = get_run_by_external_id(session, body.external_id)
        if existing is not None:
            return existing, False
    now = utcnow()
    values = {
        "project": body.project,
        "name": body.name or "",
        "external_id": body.external_id,
        "status": body.status.value,
        "diverged": False,
        "params": body.params,
        "tags": body.tags,
        "created_at": now,
        "updated_at": now,
        "started_at": now if body.status == Status.running else None,
        "ended_at": now if body.status in TERMINAL_STATUSES else None,
        **indexed_columns(body.params),
    }
    # ON CONFLICT DO NOTHING: two clients racing on one external_id both end up
    # with the same run instead of one getting an integrity error.
    statement = _insert(session)(Run).values(values).on_conflict_do_nothing().returning(Run.id)
    run_id = session.execute(statement).scalar_one_or_none()
    if run_id is None:
        assert body.external_id is not None
        existing = get_run_by_external_id(session, body.external_id)
        assert existing is not None
        return existing, False
    if not body.name:
        session.execute(update(Run).where(Run.id == run_id).values(name=f"run-{run_id}"))
    run = session.get(Run, run_id)
    assert run is not None
    events.record_run(session, run)
    return run, True


def get_run_by_external_id(session: Session, external_id: str) -> Run | None:
    return session.scalars(select(Run).where(Run.external_id == external_id)).one_or_none()


def update_run(session: Session, run: Run, body: RunUpdate) -> Run:
    now = utcnow()
    if body.name is not None:
        run.name = body.name
    if body.diverged is not None:
        run.diverged = body.diverged
    if body.tags is not None:
        run.tags = body.tags
    if body.params is not None:
        run.params = body.params
        for column, value in indexed_columns(body.params).items():
            setattr(run, column, value)
    if body.status is not None:
        run.status = body.status.value
        _status_times(run, body.status, now)
    run.updated_at = now
    session.flush()
    return run


_FULL_TOKEN_CAN = "the full token (MOMENTUM_TOKEN) can"


def worker_write_refusal(
    session: Session, run: Run, params: dict[str, Any] | None = None
) -> Forbidden | None:
    """Why the worker token may not write `run` now (Forbidden, to raise), or None if it may.

    A run that belongs to a job: only while that job is running (a retried job's claim
    makes it running again). Any other run: only while it is not finished. `params`,
    the params a request would set: not once the run has points, unless unchanged.
    Checked in the writing transaction, without row locks: a write racing the job's or
    run's end is one the worker token could have made a moment earlier anyway.
    """
    job = session.execute(
        select(Job.id, Job.status).where(Job.run_id == run.id).order_by(Job.id.desc()).limit(1)
    ).first()
    if job is not None and job.status != Status.running:
        return Forbidden(
            "run_closed",
            f"run {run.id} belongs to job {job.id}, which is {job.status}: the worker token "
            f"may write a job's run only while the job is running; {_FULL_TOKEN_CAN}",
        )
    if job is None and Status(run.status).is_terminal:
        return Forbidden(
            "run_closed",
            f"run {run.id} is {run.status}: a finished run is read-only for the worker "
            f"token; {_FULL_TOKEN_CAN} write it (e.g. `momentum sync --token`)",
        )
    if params is not None and params != run.params and has_points(session, run.id):
        return Forbidden(
            "params_frozen",
            f"run {run.id} already has points, so the worker token may not change its "
            f"params (they decide how it is compared); {_FULL_TOKEN_CAN}",
        )
    return None


def has_points(session: Session, run_id: int) -> bool:
    found = select(Series.id).where(Series.run_id == run_id, Series.last_step.is_not(None))
    return session.execute(found.limit(1)).first() is not None


def heartbeat(session: Session, run: Run) -> Run:
    now = utcnow()
    run.last_heartbeat_at = now
    if run.status == Status.queued:
        run.status = Status.running.value
        _status_times(run, Status.running, now)
    session.flush()
    return run


def fail_silent_runs(session: Session, timeout_s: float) -> int:
    """Runs that heartbeat and then fall silent past the timeout become failed."""
    now = utcnow()
    failed = session.scalars(
        update(Run)
        .where(
            Run.status == Status.running.value,
            Run.last_heartbeat_at.is_not(None),
            Run.last_heartbeat_at < now - timedelta(seconds=timeout_s),
        )
        .values(status=Status.failed.value, ended_at=now, updated_at=now)
        .returning(Run.id)
    ).all()
    events.record_run_status(session, failed, Status.failed)
    return len(failed)


def _json_path(name: str) -> str:
    return '$."' + name + '"'


def _not_json(token: str) -> Any:
    raise ValueError(f"{token} is not standard JSON")


def param_filter_value(raw: str) -> ParamValue:
    """The value of a `param=name:value` filter: standard JSON if it parses as a string,
    number, true, false or null; any other text is matched as that text (so `NaN`, which
    standard JSON lacks, finds the string "NaN": params never hold a non-finite number).
    A JSON object or array, or a number params cannot hold, raises ValueError."""
    try:
        value = json.loads(raw, parse_constant=_not_json)
    except ValueError:
        return raw
    if isinstance(value, dict | list):
        raise ValueError(
            "a param filter matches one value: a string, a number, true, false or null, "
            "not a JSON object or array"
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{raw} is beyond a float's range: params never hold such a number")
    if isinstance(value, int) and not isinstance(value, bool) and not is_int64(value):
        raise ValueError(INT64_MESSAGE)
    return value


def _param_equals(dialect: str, name: str, value: ParamValue) -> ColumnElement[bool]:
    """JSON equality, alike on both backends: PostgreSQL compares JSONB values; SQLite's
    json_extract loses the JSON type (true reads as 1, null as SQL NULL), so it also
    compares json_type."""
    if dialect == "postgresql":
        return Run.params[name] == cast(literal(json.dumps(value), String), JSONB)
    path = _json_path(name)
    kind = func.json_type(Run.params, path)
    if value is None or isinstance(value, bool):
        return kind == json.dumps(value)  # json_type answers 'null', 'true' or 'false'
    same_type = kind == "text" if isinstance(value, str) else kind.in_(("integer", "real"))
    return and_(same_type, func.json_extract(Run.params, path) == value)


def _filtered(statement: Select[Any], filters: RunFilters, dialect: str) -> Select[Any]:
    conditions: list[ColumnElement[bool]] = [Run.lifecycle_stage.in_(filters.lifecycle)]
    if filters.project is not None:
        conditions.append(Run.project == filters.project)
    if filters.status is not None:
        conditions.append(Run.status == filters.status.value)
    if filters.optimizer is not None:
        conditions.append(Run.optimizer == filters.optimizer)
    if filters.momentum_min is not None:
        conditions.append(Run.momentum >= filters.momentum_min)
    if filters.momentum_max is not None:
        conditions.append(Run.momentum <= filters.momentum_max)
    if filters.sweep_id is not None:
        conditions.append(Run.sweep_id == filters.sweep_id)
    if filters.ids is not None:
        conditions.append(Run.id.in_(filters.ids))
    for key, text in filters.tags:
        conditions.append(Run.tags[key].as_string() == text)
    for name, value in filters.params:
        conditions.append(_param_equals(dialect, name, value))
    if filters.q:
        escaped = filters.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append(Run.name.ilike(f"%{escaped}%", escape="\\"))
    if filters.finding is not None:
        found = exists().where(RunFinding.run_id == Run.id, RunFinding.kind == filters.finding)
        conditions.append(found)
    return statement.where(*conditions)


def list_runs(
    session: Session, filters: RunFilters, sort: str, limit: int, offset: int
) -> tuple[list[Run], int]:
    dialect = session.get_bind().dialect.name
    total = session.scalar(_filtered(select(func.count()).select_from(Run), filters, dialect))
    page = _filtered(select(Run), filters, dialect).order_by(*SORTS[sort]).limit(limit)
    runs = list(session.scalars(page.offset(offset)))
    return runs, int(total or 0)
