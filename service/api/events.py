"""Live: GET /events, server-sent events read from the database's change feed.

Each stream polls the `events` table in its own short transaction, so a change committed
through any replica reaches every stream on every replica. Streams end when the client
goes away (freeing their slot), and after MOMENTUM_EVENT_STREAM_MAX_S: the browser's
EventSource reconnects by itself, sending the last id it saw, and nothing is missed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated

import orjson
from anyio import to_thread
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from service import events
from service.api.compare import parse_run_ids
from service.auth import Scope as AuthScope
from service.auth import requires
from service.db import transaction
from service.deps import app_state
from service.errors import ApiError, invalid_field
from service.state import AppState

router = APIRouter(tags=["events"])

BATCH = 500
KEEPALIVE_S = 15.0
RETRY_MS = 1000


class EventStreamResponse(StreamingResponse):
    """Holds one of the process's stream slots until the response is over, however it
    ends (finished, client gone, server stopping)."""

    def __init__(self, state: AppState, content: AsyncIterator[bytes]) -> None:
        super().__init__(
            content,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self.state = state
        state.open_event_streams += 1

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.state.open_event_streams -= 1


def format_event(event_id: int, kind: str, data: object) -> bytes:
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event_id, kind.encode(), orjson.dumps(data))


def _start_position(state: AppState, last_event_id: int | None) -> tuple[int, bool]:
    """Where the stream starts, and whether the client must reload everything: the
    events it missed were pruned, or its id comes from another database."""
    with transaction(state.sessions, write=False) as session:
        latest = events.latest_id(session)
        if last_event_id is None:
            return latest, False
        oldest = events.oldest_id(session)
    ahead = last_event_id > latest
    pruned = oldest is not None and last_event_id < oldest - 1
    return (latest, True) if ahead or pruned else (last_event_id, False)


def _read(state: AppState, after: int, run_ids: list[int] | None) -> events.Batch:
    with transaction(state.sessions, write=False) as session:
        return events.read_after(session, after, run_ids, BATCH)


async def _stream(
    request: Request, last_event_id: int | None, run_ids: list[int] | None
) -> AsyncIterator[bytes]:
    state = app_state(request.app)
    settings = state.settings
    position, reset = await to_thread.run_sync(_start_position, state, last_event_id)
    yield b"retry: %d\n\n" % RETRY_MS
    if reset:
        yield format_event(position, "reset", {"reason": "events since your last id are gone"})
    started = last_sent = time.monotonic()
    while time.monotonic() - started < settings.event_stream_max_s:
        if await request.is_disconnected():
            return
        batch = await to_thread.run_sync(_read, state, position, run_ids)
        position = batch.position
        if batch.events:
            yield b"".join(format_event(e.id, e.kind, e.payload) for e in batch.events)
            last_sent = time.monotonic()
        elif time.monotonic() - last_sent > KEEPALIVE_S:
            yield b": keep-alive\n\n"  # lets proxies and dead peers notice the connection
            last_sent = time.monotonic()
        if len(batch.events) < BATCH:
            await asyncio.sleep(settings.event_poll_interval_s)


def _last_event_id(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
        message = f"Last-Event-ID {raw[:30]!r} is not an event id (a non-negative integer)"
        raise invalid_field(
            "header", "Last-Event-ID", "not an event id", message=message, kind="int_type"
        )
    return int(raw)


@router.get(
    "/events",
    dependencies=[requires(AuthScope.read, allow_query_token=True)],
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "points, run, job events."},
        503: {"description": "Too many open streams on this replica (MOMENTUM_MAX_EVENT_STREAMS)."},
    },
)
async def stream_events(
    request: Request,
    run_ids: Annotated[
        str | None, Query(max_length=20_000, description="Only these runs: 1,2,3.")
    ] = None,
    token: Annotated[
        str | None, Query(description="For EventSource, which cannot send headers.")
    ] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    """Server-sent events: `points` (run, keys, new last step), `run` and `job` changes.

    Each event has an `id:`; reconnecting with `Last-Event-ID` resumes after it. A
    `reset` event means the missed events are gone: reload, then keep listening."""
    state = app_state(request.app)
    settings = state.settings
    wanted = parse_run_ids(run_ids, settings.compare_run_cap) if run_ids is not None else None
    resume_from = _last_event_id(last_event_id)
    if state.open_event_streams >= settings.max_event_streams:
        raise ApiError(
            503,
            "too_many_streams",
            f"{settings.max_event_streams} event streams are open on this replica "
            "(MOMENTUM_MAX_EVENT_STREAMS); try again later",
            headers={"Retry-After": "5"},
        )
    return EventStreamResponse(state, _stream(request, resume_from, wanted))
