"""MLflow's error shape, `{"error_code", "message"}`, on the MLflow routes only.

Every error the app answers (validation, auth, not found, database unavailable) keeps
its status; on an MLflow path its native body is rewritten into MLflow's shape, so an
MLflow client reads the code it expects (`RESOURCE_DOES_NOT_EXIST` for a missing run).
The body limits (service/limits.py), which answer before any route runs, use
`mlflow_error_body` too; `ERROR_RESPONSES` documents all of it in the OpenAPI schema.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, ValidationError

from service.mlflow import wording

# Every prefix MLflow's server and clients use: tracking (served), and what this service
# does not serve (artifacts unless served, logged models and traces under 3.0, GraphQL,
# the gateway). An unknown path under any of them is MLflow's 404 ENDPOINT_NOT_FOUND.
MLFLOW_PREFIXES = (
    "/api/2.0/mlflow/",
    "/ajax-api/2.0/mlflow/",
    "/api/3.0/mlflow/",
    "/ajax-api/3.0/mlflow/",
    "/api/2.0/mlflow-artifacts/",
    "/ajax-api/2.0/mlflow-artifacts/",
    "/api/2.0/preview/mlflow/",
    "/ajax-api/2.0/preview/mlflow/",
    "/api/2.0/gateway/",
    "/ajax-api/2.0/gateway/",
    "/graphql",
    "/ajax-api/graphql",
    # The web UI's download route (service/api/mlflow/artifacts.py).
    "/get-artifact",
)
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


class MlflowErrorResponse(BaseModel):
    """MLflow's error body: what its client turns into an `MlflowException`."""

    model_config = ConfigDict(extra="forbid")
    error_code: str
    message: str


# What an MLflow route may answer besides its 200, for the OpenAPI schema (and so for
# tests/test_fuzz.py). Invalid input is MLflow's 400, never FastAPI's 422; "4XX" also
# keeps FastAPI from documenting its own 422 body, which these routes never send.
_ERROR_STATUSES: dict[int | str, str] = {
    400: "INVALID_PARAMETER_VALUE (a malformed or invalid field, the body not JSON)",
    401: "UNAUTHENTICATED (no token, or a wrong one)",
    403: "PERMISSION_DENIED (the token's role does not allow this)",
    404: "RESOURCE_DOES_NOT_EXIST (no such run or experiment)",
    408: "BAD_REQUEST (the request body stalled or came too slowly; MLflow's client retries)",
    413: "INVALID_PARAMETER_VALUE (the request body is over MOMENTUM_MAX_BODY_BYTES on "
    "log-batch, MOMENTUM_MAX_SMALL_BODY_BYTES elsewhere)",
    503: "TEMPORARILY_UNAVAILABLE (the database; MLflow's client retries)",
    "4XX": "any other client error, in MLflow's shape",
}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": MlflowErrorResponse, "description": description}
    for status, description in _ERROR_STATUSES.items()
}

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


def missing_value(param: str) -> MlflowError:
    """MLflow's 400 for a required field left out, null or empty."""
    return invalid(wording.missing_text(param))


def invalid_value(param: str, value: Any) -> MlflowError:
    """MLflow's 400 for a field of the wrong type."""
    return invalid(wording.invalid_text(param, value))


def stored_text(param: str, value: str, limit: int) -> str:
    """Text a column can hold: at most `limit` characters, no NUL (PostgreSQL refuses it)."""
    if "\x00" in value or len(value) > limit:
        raise invalid(f"Invalid value for parameter '{param}': at most {limit} characters, no NUL")
    return value


def required_string(param: str, value: Any) -> str:
    """`value` when it is non-empty text; else MLflow's missing or invalid value."""
    if value is None or value == "":
        raise missing_value(param)
    if not isinstance(value, str):
        raise invalid_value(param, value)
    return value


def checked(model: type[Any], **fields: Any) -> Any:
    """`model(**fields)`: our contract's checks (lengths, no NUL) as MLflow's
    INVALID_PARAMETER_VALUE."""
    try:
        return model(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise invalid(f"{where}: {first['msg']}") from exc


def is_mlflow_path(path: str) -> bool:
    return path.startswith(MLFLOW_PREFIXES)


def mlflow_error(
    status_code: int, error_code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error_code": error_code, "message": message}, status_code, headers)


async def _on_mlflow_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, MlflowError)
    return mlflow_error(exc.status_code, exc.error_code, exc.message)


def mlflow_error_body(
    status: int, message: str, *, routed: bool = True
) -> tuple[int, dict[str, str]]:
    """The status and MLflow-shaped body for one of our errors (`routed`: the path is one
    of the app's routes, so a 404 is a missing resource, not a missing endpoint)."""
    # MLflow answers every INVALID_PARAMETER_VALUE with 400, a malformed field included.
    status = 400 if status == 422 else status
    code = _CODES.get(status, "INTERNAL_ERROR")
    if status == 404 and not routed:
        code = "ENDPOINT_NOT_FOUND"
    return status, {"error_code": code, "message": message}


def _in_mlflow_shape(request: Request, response: Response) -> Response:
    try:
        error = json.loads(bytes(response.body)).get("error", {})
    except (ValueError, AttributeError):
        error = {}
    routed = request.scope.get("route") is not None
    status, body = mlflow_error_body(
        response.status_code, str(error.get("message", "")), routed=routed
    )
    headers = {k: v for k, v in response.headers.items() if k.lower() in _KEPT_HEADERS}
    return JSONResponse(body, status, headers or None)


def _wrapped(handler: Callable[..., Any]) -> Handler:
    async def handle(request: Request, exc: Exception) -> Response:
        response: Response = await handler(request, exc)
        return _in_mlflow_shape(request, response) if is_mlflow_path(request.url.path) else response

    return handle


def _worded(handler: Handler) -> Handler:
    """A refused field on an MLflow route in MLflow's own words (service/mlflow/wording.py)."""

    async def handle(request: Request, exc: Exception) -> Response:
        if is_mlflow_path(request.url.path) and isinstance(exc, RequestValidationError):
            worded = wording.validation_text(exc.errors())
            if worded is not None:
                return mlflow_error(400, "INVALID_PARAMETER_VALUE", worded)
        return await handler(request, exc)

    return handle


def install_mlflow_error_shape(app: FastAPI) -> None:
    """Call after the app's own handlers are installed (service.errors)."""
    for exc_class, handler in list(app.exception_handlers.items()):
        app.exception_handlers[exc_class] = _wrapped(handler)
    validation: Any = app.exception_handlers[RequestValidationError]
    app.exception_handlers[RequestValidationError] = _worded(validation)
    app.add_exception_handler(MlflowError, _on_mlflow_error)
