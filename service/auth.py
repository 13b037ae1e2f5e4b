"""Bearer-token roles: full, worker and read, compared in constant time.

With no token configured everything is open (local use). With any configured, every
`/api/v1` route needs a token whose role grants the route's scope: 401 when the token
is missing or wrong, 403 when it is right but its role does not allow the route.
"""

from __future__ import annotations

import hmac
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

from service.errors import ApiError
from service.settings import Settings


class Scope(StrEnum):
    read = "read"
    ingest = "ingest"  # create runs, log metrics, heartbeats, report a run's end
    worker = "worker"  # the job-claiming protocol
    admin = "admin"  # delete, cancel, submit jobs and sweeps


class Role(StrEnum):
    full = "full"
    worker = "worker"
    read = "read"


ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    Role.full: frozenset(Scope),
    Role.worker: frozenset({Scope.read, Scope.ingest, Scope.worker}),
    Role.read: frozenset({Scope.read}),
}

_UNAUTHORIZED_HEADERS = {"WWW-Authenticate": 'Bearer realm="momentum"'}


def _configured_tokens(settings: Settings) -> list[tuple[Role, bytes]]:
    pairs = [
        (Role.full, settings.token),
        (Role.worker, settings.worker_token),
        (Role.read, settings.read_token),
    ]
    return [(role, secret.get_secret_value().encode()) for role, secret in pairs if secret]


def role_for_token(settings: Settings, presented: str) -> Role | None:
    """Compare against every configured token so timing reveals neither match nor role."""
    given = presented.encode()
    matched: Role | None = None
    for role, expected in _configured_tokens(settings):
        if hmac.compare_digest(given, expected) and matched is None:
            matched = role
    return matched


def authorize(settings: Settings, presented: str | None, scope: Scope) -> None:
    if not settings.auth_enabled:
        return
    if presented is None:
        raise ApiError(
            401,
            "unauthorized",
            "this server needs a token: send Authorization: Bearer <token>",
            headers=_UNAUTHORIZED_HEADERS,
        )
    role = role_for_token(settings, presented)
    if role is None:
        raise ApiError(401, "unauthorized", "the token is not valid", headers=_UNAUTHORIZED_HEADERS)
    if scope not in ROLE_SCOPES[role]:
        raise ApiError(403, "forbidden", f"the {role.value} token may not {scope.value}")


_bearer = HTTPBearer(
    auto_error=False,
    description="MOMENTUM_TOKEN (full), MOMENTUM_WORKER_TOKEN or MOMENTUM_READ_TOKEN.",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def requires(scope: Scope, *, allow_query_token: bool = False) -> Any:
    """A route dependency granting `scope`; `allow_query_token` serves EventSource clients,
    which cannot send headers."""

    async def check(request: Request, credentials: Credentials) -> None:
        presented = credentials.credentials if credentials else None
        if presented is None and allow_query_token:
            presented = request.query_params.get("token")
        authorize(request.app.state.settings, presented, scope)

    return Depends(check)


def assert_every_api_route_guarded(app: FastAPI, prefix: str) -> None:
    """Fail at start-up, not in production, if an API operation forgot its `requires()`."""
    for path, operations in app.openapi().get("paths", {}).items():
        if not path.startswith(prefix):
            continue
        for method, operation in operations.items():
            if not operation.get("security"):
                raise RuntimeError(f"{method.upper()} {path} has no auth scope (use requires())")


def caller_role(request: Request) -> Role:
    """The role of the token this request presented: full when no token is configured.

    For routes whose rule depends on the role beyond the scope (see `service.storage.
    runs.worker_write_refusal`); `requires()` has already accepted the token.
    """
    settings: Settings = request.app.state.settings
    if not settings.auth_enabled:
        return Role.full
    scheme, presented = get_authorization_scheme_param(request.headers.get("Authorization"))
    role = role_for_token(settings, presented) if scheme.lower() == "bearer" else None
    if role is None:  # only if a route forgot its `requires()`
        raise ApiError(401, "unauthorized", "the token is not valid", headers=_UNAUTHORIZED_HEADERS)
    return role


CallerRole = Annotated[Role, Depends(caller_role)]
