"""Bearer-token roles: full, worker and read, compared in constant time.

With no token configured everything is open (local use). With any configured, every
`/api/v1` route needs a token whose role grants the route's scope: 401 when the token
is missing or wrong, 403 when it is right but its role does not allow the route.

`TokenGate`, an ASGI middleware in front of the body limits, makes those checks from the
request's headers alone, before any byte of its body is read: an unauthenticated
request costs the server its headers, never the parsing of a 30 MB body. Each route's
own `requires()` dependency checks again (and documents the scope in OpenAPI).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any, NamedTuple

from fastapi import Depends, FastAPI, Request
from fastapi.routing import RouteContext, iter_route_contexts
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from starlette.routing import Match, Router
from starlette.types import ASGIApp, Receive, Send
from starlette.types import Scope as AsgiScope

from service.deps import app_state
from service.errors import ApiError
from service.limits import reject
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


def authenticate(settings: Settings, presented: str | None) -> Role:
    """The presented token's role; 401 when there is none or it is not valid."""
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
    return role


def authorize(settings: Settings, presented: str | None, scope: Scope) -> None:
    if not settings.auth_enabled:
        return
    role = authenticate(settings, presented)
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
        authorize(app_state(request.app).settings, presented, scope)

    _REQUIREMENTS[check] = Requirement(scope, allow_query_token)
    return Depends(check)


class Requirement(NamedTuple):
    scope: Scope
    allow_query_token: bool


# What each `requires()` dependency demands, so TokenGate can read it off a route.
_REQUIREMENTS: dict[Callable[..., Any], Requirement] = {}


def route_requirement(route: RouteContext) -> Requirement | None:
    dependant = getattr(route, "dependant", None)  # None: a plain Starlette route
    if dependant is None:
        return None
    found = (_REQUIREMENTS.get(dep.call) for dep in dependant.dependencies if dep.call)
    return next((requirement for requirement in found if requirement), None)


def bearer_token(request: Request, requirement: Requirement | None) -> str | None:
    """The token as the route's own check reads it (HTTPBearer, then `?token=`)."""
    scheme, credentials = get_authorization_scheme_param(request.headers.get("authorization"))
    if scheme.lower() == "bearer" and credentials:
        return credentials
    if requirement and requirement.allow_query_token:
        return request.query_params.get("token")
    return None


class TokenGate:
    """Checks the token from the headers before the app (and the body limits) run.

    Under the guarded prefixes, with auth enabled: the route the request is for is
    found in the router's table, and its `requires()` scope is checked (401, 403);
    a path no route serves still needs a valid token (401) before its 404 or 405.
    Everything else (the dashboard, /healthz, /docs...) passes untouched."""

    def __init__(
        self, app: ASGIApp, settings: Settings, router: Router, guarded: tuple[str, ...]
    ) -> None:
        self.app, self.settings, self.router, self.guarded = app, settings, router, guarded
        self._routes: list[tuple[RouteContext, Requirement | None]] | None = None

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not self.settings.auth_enabled
            or not scope["path"].startswith(self.guarded)
        ):
            await self.app(scope, receive, send)
            return
        try:
            self._check(Request(scope))
        except ApiError as refused:
            headers = [(k.lower().encode(), v.encode()) for k, v in (refused.headers or {}).items()]
            await reject(send, scope, refused.status_code, refused.code, refused.message, headers)
            return
        await self.app(scope, receive, send)

    def _check(self, request: Request) -> None:
        requirement = self._requirement(request.scope)
        presented = bearer_token(request, requirement)
        if requirement is None:
            authenticate(self.settings, presented)
        else:
            authorize(self.settings, presented, requirement.scope)

    def _requirement(self, scope: AsgiScope) -> Requirement | None:
        """The requirement of the route the router will pick: the first that matches
        path and method, in the order routes were included (as the router tries them)."""
        if self._routes is None:  # every route is in place by the first request
            contexts = iter_route_contexts(self.router.routes)
            self._routes = [(route, route_requirement(route)) for route in contexts]
        for route, requirement in self._routes:
            if route.matches(scope)[0] == Match.FULL:
                return requirement
        return None


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
    settings = app_state(request.app).settings
    if not settings.auth_enabled:
        return Role.full
    scheme, presented = get_authorization_scheme_param(request.headers.get("Authorization"))
    role = role_for_token(settings, presented) if scheme.lower() == "bearer" else None
    if role is None:  # only if a route forgot its `requires()`
        raise ApiError(401, "unauthorized", "the token is not valid", headers=_UNAUTHORIZED_HEADERS)
    return role


CallerRole = Annotated[Role, Depends(caller_role)]
