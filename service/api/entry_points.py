"""Entry points: workers register the definitions in their momentum.toml; anyone reading
lists them. The service keeps `command` to show it and never runs or forwards it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response
from sqlalchemy.orm import Session

from momentum.contract import EntryPointPublic, EntryPointRegistration, Page
from momentum.contract.entry_points import ENTRY_POINT_PATTERN
from service.auth import Scope, requires
from service.deps import PageDep, SessionDep, WriteSessionDep
from service.domain_errors import NotFound
from service.models import EntryPoint
from service.storage import entry_points as entry_store

router = APIRouter(prefix="/entry-points", tags=["entry points"])

EntryPointNamePath = Annotated[
    str, Path(pattern=ENTRY_POINT_PATTERN, description="The entry point's name.")
]


def to_public(session: Session, entries: list[EntryPoint]) -> list[EntryPointPublic]:
    workers = entry_store.workers_of(session, [entry.id for entry in entries])
    current = entry_store.current_ids(session, {entry.name for entry in entries})
    out = []
    for entry in entries:
        definition = entry_store.definition(entry)
        out.append(
            EntryPointPublic(
                name=entry.name,
                digest=entry.digest,
                command=definition.command,
                total_param=definition.total_param,
                params=definition.params,
                workers=workers.get(entry.id, []),
                current=entry.id in current,
                registered_at=entry.registered_at,
                updated_at=entry.updated_at,
            )
        )
    return out


@router.put(
    "/{name}",
    response_model=EntryPointPublic,
    dependencies=[requires(Scope.worker)],
    responses={201: {"model": EntryPointPublic, "description": "A new (name, digest)."}},
)
def register_entry_point(
    name: EntryPointNamePath,
    body: EntryPointRegistration,
    session: WriteSessionDep,
    response: Response,
) -> EntryPointPublic:
    """A worker announces a definition it can run: 201 when this (name, digest) is new,
    200 when it was registered before. Either way it becomes the name's current
    definition; jobs submitted under an older digest keep it."""
    entry, created = entry_store.register(session, name, body)
    response.status_code = 201 if created else 200
    return to_public(session, [entry])[0]


@router.get("", response_model=Page[EntryPointPublic], dependencies=[requires(Scope.read)])
def list_entry_points(session: SessionDep, page: PageDep) -> Page[EntryPointPublic]:
    """Every registered definition, by name, newest first within a name, with its workers."""
    entries, total = entry_store.list_entry_points(session, page.limit, page.offset)
    return page.of(to_public(session, entries), total)


@router.get("/{name}", response_model=EntryPointPublic, dependencies=[requires(Scope.read)])
def get_entry_point(name: EntryPointNamePath, session: SessionDep) -> EntryPointPublic:
    """The name's current definition: the one new jobs' params are checked against."""
    entry = entry_store.current(session, name)
    if entry is None:
        raise NotFound("entry point", name)
    return to_public(session, [entry])[0]
