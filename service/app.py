"""The app factory: `create_app(settings)` builds everything; nothing connects at import."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from anyio import to_thread
from fastapi import APIRouter, Depends, FastAPI

import momentum
from momentum.contract import ErrorResponse, PointBatch
from service import events
from service.api import (
    compare,
    dashboard,
    jobs,
    metrics,
    operation_id,
    ops,
    runs,
    sweeps,
    workers,
)
from service.api import events as event_stream
from service.api import mlflow as mlflow_api
from service.auth import TokenGate, assert_every_api_route_guarded
from service.db import make_engine, make_sessionmaker, transaction
from service.deps import reject_unknown_query
from service.errors import install_error_handlers
from service.limits import BodyLimits
from service.mlflow.errors import MLFLOW_PREFIXES, install_mlflow_error_shape
from service.observability import Observability, RequestMetrics
from service.settings import Settings
from service.storage.leases import reap_lapsed_leases
from service.storage.runs import fail_silent_runs

API_PREFIX = "/api/v1"
# Where a token is needed when any is configured (service/auth.py's TokenGate).
GUARDED_PREFIXES = (f"{API_PREFIX}/", *MLFLOW_PREFIXES)
RAW_BODY_MODELS = (PointBatch,)
# What any /api/v1 route may answer besides its own: the caller's mistakes, a body too
# large (413) or stalled (408, service/limits.py), the database briefly unavailable (503).
API_ERROR_STATUSES = (400, 401, 403, 404, 408, 413, 422, 503)
log = logging.getLogger(__name__)


def _api_router() -> APIRouter:
    api = APIRouter(
        prefix=API_PREFIX,
        dependencies=[Depends(reject_unknown_query)],
        responses={status: {"model": ErrorResponse} for status in API_ERROR_STATUSES},
    )
    api.include_router(runs.router)
    api.include_router(metrics.router)
    api.include_router(workers.jobs_router)  # before jobs: /jobs/claim is no job id
    api.include_router(jobs.router)
    api.include_router(sweeps.router)
    api.include_router(compare.router)
    api.include_router(workers.router)
    api.include_router(ops.api_router)
    api.include_router(event_stream.router)
    return api


async def _reap_silent_runs(app: FastAPI) -> None:
    settings: Settings = app.state.settings
    while True:
        await asyncio.sleep(settings.reaper_interval_s)
        try:
            await to_thread.run_sync(_reap_once, app)
        except Exception:  # the reaper must outlive a database hiccup
            log.exception(
                "reaping silent runs and lapsed leases or pruning events did not work this round"
            )


def _reap_once(app: FastAPI) -> None:
    settings: Settings = app.state.settings
    with transaction(app.state.sessions, write=True) as session:
        fail_silent_runs(session, settings.run_heartbeat_timeout_s)
        reap_lapsed_leases(session)
        events.prune(session, settings.event_retention_s, settings.event_max_rows)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    engine = make_engine(app.state.settings)
    app.state.engine = engine
    app.state.sessions = make_sessionmaker(engine)
    reaper = asyncio.create_task(_reap_silent_runs(app))
    try:
        yield
    finally:
        reaper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reaper
        engine.dispose()


def _document_raw_bodies(app: FastAPI) -> None:
    """Routes that parse their own body (for speed) still publish its schema."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in RAW_BODY_MODELS:
                document = model.model_json_schema(ref_template="#/components/schemas/{model}")
                schemas.update(document.pop("$defs", {}))
                schemas[model.__name__] = document
        return app.openapi_schema or generate()

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    app = FastAPI(
        title="Momentum Monitor",
        version=momentum.__version__,
        description="Training metrics, momentum sweeps and run comparison.",
        lifespan=_lifespan,
        generate_unique_id_function=operation_id,
        # No redirect from `/runs/` to `/runs`: Starlette builds its Location from the
        # request's Host header, which a client may forge. Such a path is a 404.
        redirect_slashes=False,
    )
    app.state.settings = settings
    app.state.observability = Observability()
    install_error_handlers(app)
    app.include_router(ops.open_router)
    app.include_router(dashboard.router)
    dashboard.mount_static(app)
    app.include_router(_api_router())
    # MLflow's tracking API (service/api/mlflow.py); its web UI's /ajax-api/ paths too.
    app.include_router(mlflow_api.router, prefix=mlflow_api.MLFLOW_PREFIX)
    app.include_router(mlflow_api.router, prefix=mlflow_api.AJAX_PREFIX, include_in_schema=False)
    install_mlflow_error_shape(app)
    _document_raw_bodies(app)
    assert_every_api_route_guarded(app, API_PREFIX)
    assert_every_api_route_guarded(app, mlflow_api.MLFLOW_PREFIX)
    app.add_middleware(
        BodyLimits,
        max_bytes=settings.max_body_bytes,
        max_small_bytes=settings.max_small_body_bytes,
        timeout_s=settings.body_timeout_s,
        deadline_s=settings.body_deadline_s,
    )
    # In front of the body limits: a request without a valid token (or whose token's
    # role may not call the route) is answered from its headers, its body never read.
    app.add_middleware(TokenGate, settings=settings, router=app.router, guarded=GUARDED_PREFIXES)
    app.add_middleware(RequestMetrics, observability=app.state.observability)
    return app


def app_from_environment() -> FastAPI:
    """For `uvicorn --factory` and multi-process serving: settings from MOMENTUM_*."""
    app = create_app(Settings())
    freeze_startup_heap()
    return app


def freeze_startup_heap() -> None:
    """Exempt what is alive once the app is built (modules, routes, schemas: most of the
    process's objects) from garbage collection. Otherwise each full collection walks all
    of it: under bench/load.py's 32 writers that paused every request for 120-220 ms
    every few seconds, the larger part of the ingest p99. Frozen, a full pass takes ~10 ms."""
    gc.collect()
    gc.freeze()
