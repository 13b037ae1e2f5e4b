"""Operations: liveness, readiness, version, Prometheus metrics."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

import momentum
from momentum.contract import VersionInfo
from service.auth import Scope, requires
from service.deps import SessionDep, app_state
from service.migrate import current_revision, head_revision

log = logging.getLogger(__name__)
UNREACHABLE = "the database did not answer; the service's log says why"
open_router = APIRouter(tags=["ops"])
api_router = APIRouter(tags=["ops"])


@open_router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up (it does not touch the database)."""
    return {"status": "ok"}


@open_router.get("/readyz", responses={503: {"description": "Not ready; the body says why."}})
def readyz(request: Request) -> JSONResponse:
    """The database answers and its schema is at the migrations' head."""
    head = head_revision()
    try:
        with app_state(request.app).engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            current = current_revision(connection)
    except Exception:  # any driver error means not ready
        # The driver's text names hosts, ports, users and paths: it goes to the log, and
        # this open route says only what kind of trouble it is.
        log.warning("readyz: the database did not answer", exc_info=True)
        return JSONResponse({"status": "unavailable", "reason": UNREACHABLE}, 503)
    if current != head:
        reason = f"schema at {current}, code expects {head}: run `momentum db upgrade`"
        return JSONResponse({"status": "migrations_pending", "reason": reason}, 503)
    return JSONResponse({"status": "ready", "schema_revision": current})


@open_router.get("/metrics", response_class=Response)
def prometheus_metrics(request: Request) -> Response:
    """Prometheus text exposition of the service's own counters."""
    registry = app_state(request.app).observability.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


@api_router.get("/version", response_model=VersionInfo, dependencies=[requires(Scope.read)])
def version(session: SessionDep) -> VersionInfo:
    """Server and contract versions; clients warn when the contract differs."""
    return VersionInfo(
        server=momentum.__version__,
        contract=momentum.CONTRACT_VERSION,
        database=session.get_bind().dialect.name,
        schema_revision=current_revision(session.connection()),
    )
