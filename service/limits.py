"""Request body limits, in the contract's error shape: size (413) and a stalled body (408).

An announced Content-Length over the limit is refused before a byte is read. A
chunked body (no length) is counted as it streams: the moment it passes the limit
the 413 goes out, the app sees the client as gone, and nothing it does afterwards
reaches the wire (so no half-read batch is ever stored).

A client that stops sending in the middle of its body is answered 408 once no byte has
come for `timeout_s`, the same way (uvicorn's own timeouts cover idle keep-alive
connections, not a body that stalls). Routes read the whole body before they open a
database session, so a stalled client never holds a pool connection or SQLite's write
lock (tests/test_limits.py shows it); this bounds how long it holds a socket and a task.

On MLflow's routes both answers come in MLflow's shape, `{"error_code", "message"}`
(service/mlflow/errors.py), like every other error there.
"""

from __future__ import annotations

import anyio
import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from momentum.contract import error_response
from service.mlflow.errors import is_mlflow_path, mlflow_error_body


def too_large_message(limit: int) -> str:
    return f"the request body is over the limit of {limit} bytes: send smaller batches"


def stalled_message(timeout_s: float) -> str:
    return f"no part of the request body arrived for {timeout_s:g} s: send it again"


class BodyLimits:
    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        mlflow = is_mlflow_path(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await _reject(send, mlflow, 413, "body_too_large", too_large_message(self.max_bytes))
            return
        received = 0
        complete = False  # the last part of the body has arrived
        rejected = started = False

        async def limited_receive() -> Message:
            nonlocal received, complete, rejected
            if complete or rejected:  # e.g. a streaming response waiting for a disconnect
                return await receive()
            with anyio.move_on_after(self.timeout_s) as waiting:
                message = await receive()
            if waiting.cancelled_caught:
                if not started:
                    rejected = True
                    why = stalled_message(self.timeout_s)
                    await _reject(send, mlflow, 408, "body_timeout", why)
                return {"type": "http.disconnect"}
            if message["type"] != "http.request":
                return message
            complete = not message.get("more_body", False)
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                rejected = True
                why = too_large_message(self.max_bytes)
                await _reject(send, mlflow, 413, "body_too_large", why)
                return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if not rejected:
                started = True
                await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not rejected:
                raise


async def _reject(send: Send, mlflow: bool, status: int, code: str, message: str) -> None:
    """Answer and close; in MLflow's error shape on its routes (service/mlflow/errors.py)."""
    if mlflow:
        status, body = mlflow_error_body(status, message)
        raw = orjson.dumps(body)
    else:
        raw = orjson.dumps(error_response(code, message))
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(raw)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": raw})
