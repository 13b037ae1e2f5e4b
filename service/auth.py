"""Bearer-token roles: full, worker and read, compared in constant time; and run tokens.

With no token configured everything is open (local use). With any configured, every
`/api/v1` route needs a token whose role grants the route's scope: 401 when the token
is missing or wrong, 403 when it is right but its role does not allow the route.

`TokenGate`, an ASGI middleware in front of the body limits, makes those checks from the
request's headers alone, before any byte of its body is read: an unauthenticated
request costs the server its headers, never the parsing of a 30 MB body. Each route's
own `requires()` dependency checks again (and documents the scope in OpenAPI).

A run token (service/run_tokens.py: a claim's `run_token`, for the job's own code) has
the `run` role: it reads, and writes only its job's run, only on the routes that say a
run token may (`requires(..., run_token=True)`), only while the job's lease lasts. The
gate checks the run named in the path; routes naming it in the body (MLflow) check it
themselves, with `Caller.may_write`.
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
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.routing import Match, Router
from starlette.types import ASGIApp, Receive, Send
from starlette.types import Scope as AsgiScope

from service import run_tokens
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
    run = "run"  # a claim's run token: its job's run only (service/run_tokens.py)


ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    Role.full: frozenset(Scope),
    Role.worker: frozenset({Scope.read, Scope.ingest, Scope.worker}),
    Role.read: frozenset({Scope.read}),
    # ingest only where a route allows run tokens, and only on the token's own run
    Role.run: frozenset({Scope.read, Scope.ingest}),
}


class Caller(NamedTuple):
    """Who presented the request's token: a role, and for a run token, its one run."""

    role: Role
    run_id: int | None = None

    def may_write(self, run_id: int | str) -> bool:
        """Whether this caller's role lets it write run `run_id` (a path's text too)."""
        if self.role is not Role.run:
            return True
        text = str(run_id)  # compared as digits: no int() of a 5,000-digit path
        return text.isascii() and text.isdigit() and text.lstrip("0") == str(self.run_id)

    def not_this_run(self) -> ApiError:
        return ApiError(403, "forbidden", f"this token may write only run {self.run_id}")


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


class Requirement(NamedTuple):
    scope: Scope
    allow_query_token: bool
    run_token: bool = False


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers=_UNAUTHORIZED_HEADERS)


async def identify(settings: Settings, presented: str | None, app: Starlette | None) -> Caller:
    """Who the presented token is; 401 when there is none or it is not valid (now).

    The configured tokens are compared first, all of them, in constant time; a token
    none of them is, with the run-token prefix, is looked up (its job, in the database)."""
    if presented is None:
        raise _unauthorized("this server needs a token: send Authorization: Bearer <token>")
    role = role_for_token(settings, presented)
    if role is not None:
        return Caller(role)
    if run_tokens.looks_like_run_token(presented) and app is not None:
        sessions = app_state(app).sessions
        run_id = await run_in_threadpool(run_tokens.verify, sessions, presented)
        if run_id is not None:
            return Caller(Role.run, run_id)
        raise _unauthorized(
            "the run token is not valid: its job's lease has ended (the job finished, was "
            "released or taken back), or this server never issued it"
        )
    raise _unauthorized("the token is not valid")


def permit(caller: Caller, requirement: Requirement, path_params: dict[str, Any]) -> None:
    """403 unless the caller's role may call a route with this requirement, on the run
    its path names (if it names one)."""
    role, scope = caller.role, requirement.scope
    if scope not in ROLE_SCOPES[role]:
        raise ApiError(403, "forbidden", f"the {role.value} token may not {scope.value}")
    if role is not Role.run or scope is Scope.read:
        return
    if not requirement.run_token:
        raise ApiError(
            403,
            "forbidden",
            f"a run token may write only its own run ({caller.run_id}): its metrics, "
            "heartbeat, status, divergence and tags",
        )
    named = path_params.get("run_id")
    if named is not None and not caller.may_write(named):
        raise caller.not_this_run()


# Where the gate leaves the caller it identified, so the route's checks need not look a
# run token up again: (the presented token, its caller).
_CALLER_KEY = "momentum.caller"


async def caller_of(request: Request, presented: str | None, settings: Settings) -> Caller:
    cached = request.scope.get(_CALLER_KEY)
    if cached is not None and presented is not None and cached[0] == presented:
        return cached[1]
    caller = await identify(settings, presented, request.scope.get("app"))
    request.scope[_CALLER_KEY] = (presented, caller)
    return caller


_bearer = HTTPBearer(
    auto_error=False,
    description="MOMENTUM_TOKEN (full), MOMENTUM_WORKER_TOKEN, MOMENTUM_READ_TOKEN, or a "
    "claim's run token (its job's run only).",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def requires(scope: Scope, *, allow_query_token: bool = False, run_token: bool = False) -> Any:
    """A route dependency granting `scope`; `allow_query_token` serves EventSource clients,
    which cannot send headers. `run_token`: a run token may call this (ingest) route, on
    its own run only; a route whose path has no `{run_id}` must check the run it writes
    with `Caller.may_write` itself."""
    requirement = Requirement(scope, allow_query_token, run_token)

    async def check(request: Request, credentials: Credentials) -> None:
        settings = app_state(request.app).settings
        if not settings.auth_enabled:
            return
        presented = credentials.credentials if credentials else None
        if presented is None and allow_query_token:
            presented = request.query_params.get("token")
        caller = await caller_of(request, presented, settings)
        permit(caller, requirement, request.path_params)

    _REQUIREMENTS[check] = requirement
    return Depends(check)


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
            await self._check(Request(scope))
        except ApiError as refused:
            headers = [(k.lower().encode(), v.encode()) for k, v in (refused.headers or {}).items()]
            await reject(send, scope, refused.status_code, refused.code, refused.message, headers)
            return
        await self.app(scope, receive, send)

    async def _check(self, request: Request) -> None:
        requirement, path_params = self._requirement(request.scope)
        caller = await caller_of(request, bearer_token(request, requirement), self.settings)
        if requirement is not None:
            permit(caller, requirement, path_params)

    def _requirement(self, scope: AsgiScope) -> tuple[Requirement | None, dict[str, Any]]:
        """The requirement of the route the router will pick, and the path parameters it
        will see: the first route that matches path and method, in the order routes were
        included (as the router tries them)."""
        if self._routes is None:  # every route is in place by the first request
            contexts = iter_route_contexts(self.router.routes)
            self._routes = [(route, route_requirement(route)) for route in contexts]
        for route, requirement in self._routes:
            match, child_scope = route.matches(scope)
            if match == Match.FULL:
                return requirement, child_scope.get("path_params", {})
        return None, {}


def assert_every_api_route_guarded(app: FastAPI, prefix: str) -> None:
    """Fail at start-up, not in production, if an API operation forgot its `requires()`."""
    for path, operations in app.openapi().get("paths", {}).items():
        if not path.startswith(prefix):
            continue
        for method, operation in operations.items():
            if not operation.get("security"):
                raise RuntimeError(f"{method.upper()} {path} has no auth scope (use requires())")


async def caller(request: Request) -> Caller:
    """Who presented this request's token: full when no token is configured.

    For routes whose rule depends on more than the scope: the worker token's limits
    (`service.storage.runs.worker_write_refusal`) and the run token's one run
    (`service.write_rights`). `requires()` has already accepted the token.
    """
    settings = app_state(request.app).settings
    if not settings.auth_enabled:
        return Caller(Role.full)
    scheme, presented = get_authorization_scheme_param(request.headers.get("Authorization"))
    return await caller_of(request, presented if scheme.lower() == "bearer" else None, settings)


async def caller_role(request: Request) -> Role:
    return (await caller(request)).role


CallerDep = Annotated[Caller, Depends(caller)]
CallerRole = Annotated[Role, Depends(caller_role)]
