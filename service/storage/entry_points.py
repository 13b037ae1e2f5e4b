"""Data access for entry points: registrations, the workers that have each, the current
definition of a name.

A registration is keyed by (name, digest). Registering it again is idempotent (it only
becomes the newest again); a new digest for a name adds a row and becomes the name's
current definition, while older rows stay so that jobs submitted under them keep their
meaning (a claim must name their exact digest). The service stores `command` to show
it; it never runs or forwards it.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from momentum.contract import EntryPointDefinition, EntryPointRegistration
from service.models import EntryPoint, EntryPointWorker, Job, utcnow

# Newest registration first: the first row of a name is its current definition.
NEWEST_FIRST = (EntryPoint.updated_at.desc(), EntryPoint.id.desc())


def _insert(session: Session) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def register(
    session: Session, name: str, registration: EntryPointRegistration
) -> tuple[EntryPoint, bool]:
    """The (name, digest) row, now the name's newest; True when it was new. Concurrent
    registrations of one definition insert it once (ON CONFLICT DO NOTHING)."""
    now = utcnow()
    definition = registration.definition().model_dump(mode="json")
    inserted = session.execute(
        _insert(session)(EntryPoint)
        .values(
            name=name,
            digest=registration.digest,
            definition=definition,
            registered_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=[EntryPoint.name, EntryPoint.digest])
        .returning(EntryPoint.id)
    ).scalar_one_or_none()
    entry = session.scalars(
        select(EntryPoint)
        .where(EntryPoint.name == name, EntryPoint.digest == registration.digest)
        .execution_options(populate_existing=True)
    ).one()
    entry.updated_at = now
    if registration.worker_id is not None:
        _worker_has(session, entry, registration.worker_id, now)
    session.flush()
    return entry, inserted is not None


def _worker_has(session: Session, entry: EntryPoint, worker_id: str, now: datetime) -> None:
    """The worker has this definition of the name, and no other (it was edited)."""
    others = select(EntryPoint.id).where(EntryPoint.name == entry.name, EntryPoint.id != entry.id)
    session.execute(
        delete(EntryPointWorker).where(
            EntryPointWorker.worker_id == worker_id,
            EntryPointWorker.entry_point_id.in_(others.scalar_subquery()),
        )
    )
    statement = _insert(session)(EntryPointWorker).values(
        entry_point_id=entry.id, worker_id=worker_id, last_seen_at=now
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[EntryPointWorker.entry_point_id, EntryPointWorker.worker_id],
            set_={"last_seen_at": now},
        )
    )


def current(session: Session, name: str) -> EntryPoint | None:
    """The name's current definition: its newest registration."""
    newest = select(EntryPoint).where(EntryPoint.name == name).order_by(*NEWEST_FIRST).limit(1)
    return session.scalars(newest).first()


def list_entry_points(session: Session, limit: int, offset: int) -> tuple[list[EntryPoint], int]:
    """By name; within a name, newest registration first."""
    total = session.scalar(select(func.count()).select_from(EntryPoint))
    page = select(EntryPoint).order_by(EntryPoint.name, *NEWEST_FIRST).limit(limit).offset(offset)
    return list(session.scalars(page)), int(total or 0)


def current_ids(session: Session, names: set[str]) -> set[int]:
    """The id of each name's current definition."""
    rows = session.execute(
        select(EntryPoint.name, EntryPoint.id)
        .where(EntryPoint.name.in_(names))
        .order_by(EntryPoint.name, *NEWEST_FIRST)
    )
    newest: dict[str, int] = {}
    for name, entry_id in rows:
        newest.setdefault(name, entry_id)
    return set(newest.values())


def workers_of(session: Session, entry_ids: list[int]) -> dict[int, list[str]]:
    """Each definition's workers, by id."""
    out: dict[int, list[str]] = defaultdict(list)
    if not entry_ids:
        return out
    rows = session.execute(
        select(EntryPointWorker.entry_point_id, EntryPointWorker.worker_id)
        .where(EntryPointWorker.entry_point_id.in_(entry_ids))
        .order_by(EntryPointWorker.worker_id)
    )
    for entry_id, worker_id in rows:
        out[entry_id].append(worker_id)
    return out


def definition(entry: EntryPoint) -> EntryPointDefinition:
    return EntryPointDefinition.model_validate(entry.definition)


def declared_total(session: Session, job: Job) -> int | None:
    """The job's step count as declared: the config's `steps`, or the value of the
    entry point's `total_param`."""
    if job.entry_point is None:
        steps = job.config.get("steps")
        return steps if isinstance(steps, int) else None
    entry = session.scalars(
        select(EntryPoint).where(
            EntryPoint.name == job.entry_point, EntryPoint.digest == job.entry_point_digest
        )
    ).first()
    total_param = definition(entry).total_param if entry is not None else None
    total = (job.params or {}).get(total_param) if total_param else None
    return total if isinstance(total, int) and not isinstance(total, bool) else None
