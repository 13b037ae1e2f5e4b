"""Request dependencies as `Annotated` aliases; handlers take these, never module globals."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, TypeVar

from anyio import to_thread
from fastapi import Depends, Query, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel
from sqlalchemy.orm import Session
from starlette.applications import Starlette

from momentum.contract import Page
from momentum.contract.metrics import MAX_STEP, MIN_STEP
from service.db import transaction
from service.errors import ApiError, invalid_field, unprocessable
from service.models import MAX_ROW_ID
from service.settings import Settings
from service.state import AppState

_STATE = "momentum"  # the attribute of `app.state` that holds the AppState


def app_state(app: Starlette) -> AppState:
    """The running app's typed state (service/state.py), set by its lifespan."""
    state = getattr(app.state, _STATE, None)
    if not isinstance(state, AppState):
        raise RuntimeError("the app is not running: its lifespan has not started")
    return state


def attach_state(app: Starlette, state: AppState | None) -> None:
    """For the lifespan: the state its app runs with (None once it has stopped)."""
    setattr(app.state, _STATE, state)


# No list is longer than there are row ids.
MAX_OFFSET = MAX_ROW_ID


# Dependencies that only look at the request are `async def`: FastAPI runs a plain `def`
# dependency in the thread pool, and each such hop costs more than the check itself.
async def _settings(request: Request) -> Settings:
    return app_state(request.app).settings


async def _state(request: Request) -> AppState:
    return app_state(request.app)


def _read_session(request: Request) -> Iterator[Session]:
    with transaction(app_state(request.app).sessions, write=False) as session:
        yield session


def _write_session(request: Request) -> Iterator[Session]:
    with transaction(app_state(request.app).sessions, write=True) as session:
        yield session


SettingsDep = Annotated[Settings, Depends(_settings)]
StateDep = Annotated[AppState, Depends(_state)]


async def require_current_schema(request: Request) -> None:
    """503 `migrations_pending` (naming the command) until the schema is at the code's
    head; without it each call on a fresh database failed with its own error. Once the
    schema is current this is a flag test, with no hop to the thread pool."""
    gate = app_state(request.app).schema_gate
    if gate.ready:
        return
    reason = await to_thread.run_sync(gate.pending)
    if reason is not None:
        raise ApiError(503, "migrations_pending", reason, headers={"Retry-After": "5"})


# Reads of series: a step range, and how many points a series may come back as.
# Any int64: steps may be negative (MLflow accepts any int64 step).
Step = Annotated[int, Query(ge=MIN_STEP, le=MAX_STEP)]
MaxPoints = Annotated[
    int | None,
    Query(
        ge=1,
        le=10_000_000,
        description="Downsample each series to at most this many (default and largest: "
        "see README).",
    ),
]

DEFAULT_PAGE_SIZE = 50
Listed = TypeVar("Listed", bound=BaseModel)


@dataclass(frozen=True)
class PageWindow:
    limit: int
    offset: int

    def of(self, items: list[Listed], total: int) -> Page[Listed]:
        """The contract's list envelope for this window's `items` of `total`."""
        return Page[Listed](items=items, total=total, limit=self.limit, offset=self.offset)


async def _page_window(
    request: Request,
    limit: Annotated[
        int | None, Query(ge=1, le=1000, description="Items per page (default 50).")
    ] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> PageWindow:
    """The contract's pagination (at most 1000 a page), or less by MOMENTUM_MAX_PAGE_SIZE:
    a larger `limit` is a 422, not silently fewer items than asked for."""
    largest = app_state(request.app).settings.max_page_size
    if limit is None:
        return PageWindow(min(DEFAULT_PAGE_SIZE, largest), offset)
    if limit > largest:
        message = f"limit {limit} is over this server's page size of {largest}: page with offset"
        raise invalid_field("query", "limit", message, message=message, kind="less_than_equal")
    return PageWindow(limit, offset)


PageDep = Annotated[PageWindow, Depends(_page_window)]
# scope="function": the transaction commits before the response is sent, so an
# acknowledged request is a committed one.
SessionDep = Annotated[Session, Depends(_read_session, scope="function")]
WriteSessionDep = Annotated[Session, Depends(_write_session, scope="function")]

_allowed_query_names: dict[int, frozenset[str]] = {}


def _declared_query_names(dependant: Dependant) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _declared_query_names(sub)
    return names


def _query_names(route: APIRoute) -> frozenset[str]:
    names = _allowed_query_names.get(id(route))
    if names is None:
        names = frozenset(_declared_query_names(route.dependant))
        _allowed_query_names[id(route)] = names
    return names


async def reject_unknown_query(request: Request) -> None:
    """Unknown query parameters are a 422: a typo such as `?limt=5` must not pass silently."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    unknown = sorted(set(request.query_params) - _query_names(route))
    if unknown:
        allowed = ", ".join(sorted(_query_names(route))) or "none"
        raise unprocessable(
            f"unknown query parameter(s): {', '.join(unknown)}; this route accepts: {allowed}",
            [
                {"loc": ["query", name], "msg": "unknown parameter", "type": "extra_forbidden"}
                for name in unknown
            ],
            code="unknown_query_parameter",
        )
