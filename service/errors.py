"""The contract's error shape, `{"error": {"code", "message", "detail"}}`, for every failure."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Match

from momentum.contract import error_response
from service import domain_errors as domain
from service.domain_errors import DomainError

log = logging.getLogger(__name__)
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


class ApiError(Exception):
    """A caller's mistake (or a conflict) with a message a person can act on."""

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        detail: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.detail = detail or []
        self.headers = headers


def unprocessable(
    message: str, detail: list[dict[str, Any]] | None = None, *, code: str = "validation_error"
) -> ApiError:
    """Every hand-made 422 (the contract's `validation_error` unless `code` says otherwise)."""
    return ApiError(422, code, message, detail)


def invalid_field(
    where: str, name: str, msg: str, *, message: str | None = None, kind: str = "value_error"
) -> ApiError:
    """A 422 about one field, located as [where, name] (`query`, `header`); its message
    is `name: msg` unless given."""
    detail = [{"loc": [where, name], "msg": msg, "type": kind}]
    return unprocessable(message or f"{name}: {msg}", detail)


# The contract's status for each kind of domain error (service/domain_errors.py).
_DOMAIN_STATUS: dict[type[DomainError], int] = {
    domain.NotFound: 404,
    domain.Conflict: 409,
    domain.LeaseNotHeld: 409,
    domain.Forbidden: 403,
}


def from_domain(exc: DomainError) -> ApiError:
    """The contract's answer to a domain error: its status, its code, its message."""
    if isinstance(exc, domain.InvalidQuery):
        return invalid_field("query", exc.name, exc.msg, message=exc.message)
    # A kind not in the table yet is still the caller's request refused, never a 500.
    status = next((code for kind, code in _DOMAIN_STATUS.items() if isinstance(exc, kind)), 400)
    return ApiError(status, exc.code, exc.message)


def _json_error(exc: ApiError) -> JSONResponse:
    body = error_response(exc.code, exc.message, exc.detail)
    return JSONResponse(body, exc.status_code, headers=exc.headers)


def _validation_items(errors: Sequence[Any]) -> list[dict[str, Any]]:
    items = []
    for error in errors:
        loc = list(error.get("loc", ()))
        if loc and loc[0] == "body":
            # The body is the request itself: a bad point reads ["points", 3, "step"].
            loc = loc[1:]
        items.append({"loc": loc, "msg": str(error.get("msg", "")), "type": error.get("type", "")})
    return items


def _summary(items: list[dict[str, Any]]) -> str:
    first = items[0]
    where = ".".join(str(part) for part in first["loc"]) or "request"
    more = f" (and {len(items) - 1} more)" if len(items) > 1 else ""
    return f"invalid request: {where}: {first['msg']}{more}"


async def _on_api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return _json_error(exc)


async def _on_domain_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    return _json_error(from_domain(exc))


def validation_error(errors: Sequence[Any]) -> ApiError:
    """The contract's 422 (or 400 for a body that is not JSON at all)."""
    items = _validation_items(errors)
    if any(item["type"] == "json_invalid" for item in items):
        return ApiError(400, "invalid_json", "the request body is not valid JSON", items)
    return unprocessable(_summary(items), items)


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return await _on_api_error(request, validation_error(exc.errors()))


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path. Starlette's own 405 names only the
    first route that matched the path, but each method here is a route of its own."""
    allowed = []
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return allowed


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_")
    message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    headers = dict(exc.headers) if exc.headers else {}
    if exc.status_code == 405:
        allowed = allowed_methods(request)
        headers["Allow"] = ", ".join(allowed)
        message = f"{request.method} is not allowed here; this path accepts {headers['Allow']}"
    return _json_error(ApiError(exc.status_code, code, message, headers=headers or None))


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    message = "the server failed; the request was not applied"
    return _json_error(ApiError(500, "internal_error", message))


async def _on_database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    # A restarting PostgreSQL, a connection cut, SQLite's lock held past the busy
    # timeout, no pooled connection free in time: the transaction rolled back (or never
    # began), and the same request will succeed later.
    log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
    message = "the database is unavailable right now; nothing was applied, retry shortly"
    return _json_error(ApiError(503, "database_unavailable", message, headers={"Retry-After": "1"}))


async def _on_client_gone(request: Request, exc: Exception) -> JSONResponse:
    # The client hung up (or service.limits gave up on it) before its body arrived whole:
    # nothing was applied, and no one is left to read this answer.
    log.info("client disconnected before its body arrived: %s %s", request.method, request.url.path)
    message = "the client disconnected before the request body arrived; nothing was applied"
    return _json_error(ApiError(400, "client_disconnected", message))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ClientDisconnect, _on_client_gone)
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(DomainError, _on_domain_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(OperationalError, _on_database_unavailable)
    app.add_exception_handler(InterfaceError, _on_database_unavailable)
    # Every pooled connection stayed busy past MOMENTUM_POOL_TIMEOUT_S: retryable too.
    app.add_exception_handler(PoolTimeout, _on_database_unavailable)
    app.add_exception_handler(Exception, _on_unexpected)
