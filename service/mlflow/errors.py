"""MLflow's error shape, `{"error_code", "message"}`, on the MLflow routes only.

Every error the app answers (validation, auth, not found, database unavailable) keeps
its status; on an MLflow path its native body is rewritten into MLflow's shape, so an
MLflow client reads the code it expects (`RESOURCE_DOES_NOT_EXIST` for a missing run).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

MLFLOW_PREFIXES = ("/api/2.0/mlflow/", "/ajax-api/2.0/mlflow/")
_CODES = {
    400: "INVALID_PARAMETER_VALUE",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "RESOURCE_DOES_NOT_EXIST",
    405: "BAD_REQUEST",
    408: "BAD_REQUEST",
    409: "RESOURCE_ALREADY_EXISTS",
    413: "INVALID_PARAMETER_VALUE",
    422: "INVALID_PARAMETER_VALUE",
    429: "REQUEST_LIMIT_EXCEEDED",
    503: "TEMPORARILY_UNAVAILABLE",
}
_KEPT_HEADERS = ("www-authenticate", "retry-after", "allow")

Handler = Callable[[Request, Exception], Awaitable[Response]]


class MlflowError(Exception):
    """An error with MLflow's own code, e.g. `RESOURCE_ALREADY_EXISTS`."""

    def __init__(self, status_code: int, error_code: str, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.error_code = error_code
        self.message = message


def invalid(message: str) -> MlflowError:
    return MlflowError(400, "INVALID_PARAMETER_VALUE", message)


def missing(message: str) -> MlflowError:
    return MlflowError(404, "RESOURCE_DOES_NOT_EXIST", message)


def is_mlflow_path(path: str) -> bool:
    return path.startswith(MLFLOW_PREFIXES)


def mlflow_error(
    status_code: int, error_code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error_code": error_code, "message": message}, status_code, headers)


async def _on_mlflow_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, MlflowError)
    return mlflow_error(exc.status_code, exc.error_code, exc.message)


def _in_mlflow_shape(request: Request, response: Response) -> Response:
    try:
        error = json.loads(bytes(response.body)).get("error", {})
    except (ValueError, AttributeError):
        error = {}
    # MLflow answers every INVALID_PARAMETER_VALUE with 400, a malformed field included.
    status = 400 if response.status_code == 422 else response.status_code
    code = _CODES.get(status, "INTERNAL_ERROR")
    if status == 404 and request.scope.get("route") is None:
        code = "ENDPOINT_NOT_FOUND"
    headers = {k: v for k, v in response.headers.items() if k.lower() in _KEPT_HEADERS}
    return mlflow_error(status, code, str(error.get("message", "")), headers or None)


def _wrapped(handler: Callable[..., Any]) -> Handler:
    async def handle(request: Request, exc: Exception) -> Response:
        response: Response = await handler(request, exc)
        return _in_mlflow_shape(request, response) if is_mlflow_path(request.url.path) else response

    return handle


def install_mlflow_error_shape(app: FastAPI) -> None:
    """Call after the app's own handlers are installed (service.errors)."""
    for exc_class, handler in list(app.exception_handlers.items()):
        app.exception_handlers[exc_class] = _wrapped(handler)
    app.add_exception_handler(MlflowError, _on_mlflow_error)
