"""Request body limits, in the contract's error shape: size (413) and a stalled body (408).

An announced Content-Length over the limit is refused before a byte is read. A
chunked body (no length) is counted as it streams: the moment it passes the limit
the 413 goes out, the app sees the client as gone, and nothing it does afterwards
reaches the wire (so no half-read batch is ever stored).

Only the ingest routes (`INGEST_PATHS`: a metrics batch, MLflow's log-batch) take up to
`max_bytes`; every other route's body (a run, a job, a sweep) is small, and anything over
`max_small_bytes` is refused the same way.

A client that stops sending in the middle of its body is answered 408 once no byte has
come for `timeout_s`, the same way (uvicorn's own timeouts cover idle keep-alive
connections, not a body that stalls). A body that keeps trickling in is answered 408
too once `deadline_s` has passed since the request began, whatever the gaps: a client
sending a byte every few seconds cannot hold its socket and what it sent for good.
Routes read the whole body before they open a database session, so a stalled client
never holds a pool connection or SQLite's write lock (tests/test_limits.py shows it);
this bounds how long it holds a socket and a task.

Credentials are checked before this runs (service/auth.py's TokenGate), so only a
caller with a valid token gets as far as sending a body.

On MLflow's routes both answers come in MLflow's shape, `{"error_code", "message"}`
(service/mlflow/errors.py), like every other error there.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable

import anyio
import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from momentum.contract import error_response
from service.mlflow.errors import is_mlflow_path, mlflow_error_body

# POST routes whose body is a batch of points, which may be large (MOMENTUM_MAX_BODY_BYTES).
INGEST_PATHS = (
    re.compile(r"/api/v1/runs/[^/]+/metrics"),
    re.compile(r"/(?:ajax-)?api/2\.0/mlflow/runs/log-batch"),
)

# Artifact uploads (one file each, streamed to disk): MOMENTUM_MAX_ARTIFACT_BYTES, and no
# whole-body deadline (a checkpoint of a GiB takes what the link takes), only the stall
# timeout.
ARTIFACT_UPLOADS = (
    ("PUT", re.compile(r"/(?:ajax-)?api/2\.0/mlflow-artifacts/artifacts/.*")),
    ("POST", re.compile(r"/(?:ajax-)?api/2\.0/mlflow/upload-artifact")),
)


def is_artifact_upload(scope: Scope) -> bool:
    method, path = scope["method"], scope["path"]
    return any(method == m and pattern.fullmatch(path) for m, pattern in ARTIFACT_UPLOADS)


def is_ingest(scope: Scope) -> bool:
    return scope["method"] == "POST" and any(p.fullmatch(scope["path"]) for p in INGEST_PATHS)


def too_large_message(limit: int, setting: str) -> str:
    return f"the request body is over the limit of {limit} bytes ({setting}): send less"


def stalled_message(timeout_s: float) -> str:
    return f"no part of the request body arrived for {timeout_s:g} s: send it again"


def late_message(deadline_s: float) -> str:
    return f"the request body did not arrive whole within {deadline_s:g} s: send it again"


class BodyLimits:
    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        max_small_bytes: int,
        timeout_s: float,
        deadline_s: float,
        max_artifact_bytes: int | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_artifact_bytes = max_artifact_bytes or max_bytes
        self.max_small_bytes = min(max_small_bytes, max_bytes)
        self.timeout_s = timeout_s
        self.deadline_s = deadline_s

    def _limit(self, scope: Scope) -> tuple[int, str]:
        if is_artifact_upload(scope):
            return self.max_artifact_bytes, "MOMENTUM_MAX_ARTIFACT_BYTES"
        if is_ingest(scope):
            return self.max_bytes, "MOMENTUM_MAX_BODY_BYTES"
        return self.max_small_bytes, "MOMENTUM_MAX_SMALL_BODY_BYTES"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, setting = self._limit(scope)
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await reject(send, scope, 413, "body_too_large", too_large_message(limit, setting))
            return
        watch = _BodyWatch(self, scope, receive, send, limit, setting)
        try:
            await self.app(scope, watch.receive, watch.send)
        except Exception:
            if not watch.rejected:
                raise


class _BodyWatch:
    """One request's body, counted and timed as it arrives; answers 413 or 408 itself
    and then shows the app a disconnect, so nothing the app does afterwards is sent."""

    def __init__(
        self,
        limits: BodyLimits,
        scope: Scope,
        receive: Receive,
        send: Send,
        limit: int,
        setting: str,
    ) -> None:
        self.limits, self.scope, self._receive, self._send = limits, scope, receive, send
        self.limit, self.setting = limit, setting
        endless = is_artifact_upload(scope)
        self.deadline = math.inf if endless else time.monotonic() + limits.deadline_s
        self.received = 0
        self.complete = False  # the last part of the body has arrived
        self.rejected = self.started = False

    async def receive(self) -> Message:
        if self.complete or self.rejected:  # e.g. a streaming response awaiting a disconnect
            return await self._receive()
        left = self.deadline - time.monotonic()
        with anyio.move_on_after(min(self.limits.timeout_s, max(left, 0))) as waiting:
            message = await self._receive()
        if waiting.cancelled_caught:
            late = left <= self.limits.timeout_s
            why = (
                late_message(self.limits.deadline_s)
                if late
                else stalled_message(self.limits.timeout_s)
            )
            return await self._give_up(408, "body_timeout", why)
        if message["type"] != "http.request":
            return message
        self.complete = not message.get("more_body", False)
        self.received += len(message.get("body", b""))
        if self.received > self.limit:
            why = too_large_message(self.limit, self.setting)
            return await self._give_up(413, "body_too_large", why)
        return message

    async def _give_up(self, status: int, code: str, message: str) -> Message:
        if not self.started:
            self.rejected = True
            await reject(self._send, self.scope, status, code, message)
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        if not self.rejected:
            self.started = True
            await self._send(message)


async def reject(
    send: Send,
    scope: Scope,
    status: int,
    code: str,
    message: str,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    """Answer and close, before the app runs; in MLflow's error shape on its routes
    (service/mlflow/errors.py), the contract's elsewhere."""
    if is_mlflow_path(scope["path"]):
        status, body = mlflow_error_body(status, message)
        raw = orjson.dumps(body)
    else:
        raw = orjson.dumps(error_response(code, message))
    headers = [
        *headers,
        (b"content-type", b"application/json"),
        (b"content-length", str(len(raw)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": raw})
