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
from sqlalchemy.exc import DBAPIError

import momentum
from momentum.contract import ErrorResponse, PointBatch
from service import diagnosis, events
from service.api import artifacts as run_artifacts
from service.api import (
    compare,
    dashboard,
    entry_points,
    job_logs,
    jobs,
    metrics,
    operation_id,
    ops,
    runs,
    sweeps,
    verdict,
    workers,
)
from service.api import (
    diagnosis as diagnosis_api,
)
from service.api import events as event_stream
from service.api import mlflow as mlflow_api
from service.artifacts import ArtifactStore
from service.auth import TokenGate, assert_every_api_route_guarded
from service.db import transaction
from service.deps import attach_state, reject_unknown_query, require_current_schema
from service.errors import install_error_handlers
from service.limits import BodyLimits
from service.mlflow.errors import MLFLOW_PREFIXES, install_mlflow_error_shape
from service.observability import Observability, RequestMetrics
from service.settings import Settings
from service.state import AppState
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
        dependencies=[Depends(reject_unknown_query), Depends(require_current_schema)],
        responses={status: {"model": ErrorResponse} for status in API_ERROR_STATUSES},
    )
    api.include_router(runs.router)
    api.include_router(run_artifacts.router)
    api.include_router(metrics.router)
    api.include_router(diagnosis_api.router)
    api.include_router(workers.jobs_router)  # before jobs: /jobs/claim is no job id
    api.include_router(jobs.router)
    api.include_router(job_logs.router)
    api.include_router(sweeps.router)
    api.include_router(entry_points.router)
    api.include_router(compare.router)
    api.include_router(verdict.compare_router)
    api.include_router(verdict.sweeps_router)
    api.include_router(workers.router)
    api.include_router(ops.api_router)
    api.include_router(event_stream.router)
    return api


class _ReaperLog:
    """One log line when the reaper's state changes (working, waiting for migrations,
    failing with some error), not one per round: a round runs every few seconds."""

    def __init__(self) -> None:
        self.state = "working"

    def _changed(self, state: str) -> bool:
        changed, self.state = state != self.state, state
        return changed

    def worked(self) -> None:
        if self._changed("working"):  # as loud as the line that said it did not
            log.warning("the reaper works again")

    def waiting(self, reason: str) -> None:
        if self._changed("migrations_pending"):
            log.warning("the reaper waits for migrations: %s", reason)

    def failed(self, exc: Exception) -> None:
        if not self._changed(f"failed: {type(exc).__name__}"):
            return
        if isinstance(exc, DBAPIError):  # the database is away: its message says enough
            log.warning("the reaper cannot reach the database, retrying: %s", exc.orig)
        else:
            log.exception("reaping, pruning events or sweeping artifact leftovers failed")


async def _reap_silent_runs(state: AppState) -> None:
    reaper_log = _ReaperLog()
    while True:
        await asyncio.sleep(state.settings.reaper_interval_s)
        try:
            pending = await to_thread.run_sync(_reap_once, state)
            await to_thread.run_sync(_sweep_artifact_leftovers, state.settings)
        except Exception as exc:  # the reaper must outlive a database or disk hiccup
            reaper_log.failed(exc)
            continue
        if pending is None:
            reaper_log.worked()
        else:
            reaper_log.waiting(pending)


def _sweep_artifact_leftovers(settings: Settings) -> None:
    store = ArtifactStore(settings.artifacts_dir, settings.max_artifact_bytes)
    if store.sweep_leftovers():
        log.info("removed artifact uploads or removals a crash left unfinished")


def _reap_once(state: AppState) -> str | None:
    """One round; the reason instead while migrations are pending (there are no tables)."""
    settings = state.settings
    pending = state.schema_gate.pending()
    if pending is not None:
        return pending
    with transaction(state.sessions, write=True) as session:
        fail_silent_runs(session, settings.run_heartbeat_timeout_s)
        reap_lapsed_leases(session)
        events.prune(session, settings.event_retention_s, settings.event_max_rows)
    return None


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Read here, not in create_app: a test may hand a built app other settings first.
    state = AppState.open(app.state.settings, app.state.observability)
    attach_state(app, state)
    tasks = [asyncio.create_task(_reap_silent_runs(state))]
    if state.settings.diagnosis_interval_s > 0:  # findings as points arrive (#21)
        tasks.append(asyncio.create_task(diagnosis.follow(state)))
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        state.close()
        attach_state(app, None)


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
    # What the lifespan builds its AppState from (service/state.py).
    app.state.settings = settings
    app.state.observability = Observability()
    install_error_handlers(app)
    _include_routes(app)
    install_mlflow_error_shape(app)
    _document_raw_bodies(app)
    assert_every_api_route_guarded(app, API_PREFIX)
    assert_every_api_route_guarded(app, mlflow_api.MLFLOW_PREFIX)
    assert_every_api_route_guarded(app, "/get-artifact")
    _add_middleware(app, settings)
    return app


def _include_routes(app: FastAPI) -> None:
    app.include_router(ops.open_router)
    app.include_router(mlflow_api.server_router)  # MLflow's GET /health and /version
    app.include_router(dashboard.router)
    dashboard.mount_static(app)
    app.include_router(_api_router())
    # MLflow's tracking API (service/api/mlflow.py); its web UI's /ajax-api/ paths too.
    schema = [Depends(require_current_schema)]
    app.include_router(mlflow_api.router, prefix=mlflow_api.MLFLOW_PREFIX, dependencies=schema)
    app.include_router(
        mlflow_api.router,
        prefix=mlflow_api.AJAX_PREFIX,
        dependencies=schema,
        include_in_schema=False,
    )
    artifacts = mlflow_api.artifacts_router
    app.include_router(artifacts, prefix=mlflow_api.ARTIFACTS_PREFIX, dependencies=schema)
    ajax = mlflow_api.AJAX_ARTIFACTS_PREFIX
    app.include_router(artifacts, prefix=ajax, dependencies=schema, include_in_schema=False)
    app.include_router(mlflow_api.root_router, dependencies=schema)


def _add_middleware(app: FastAPI, settings: Settings) -> None:
    """Outermost last: the request metrics see every answer, the token gate's included."""
    app.add_middleware(
        BodyLimits,
        max_bytes=settings.max_body_bytes,
        max_small_bytes=settings.max_small_body_bytes,
        max_artifact_bytes=settings.max_artifact_bytes,
        timeout_s=settings.body_timeout_s,
        deadline_s=settings.body_deadline_s,
    )
    # In front of the body limits: a request without a valid token (or whose token's
    # role may not call the route) is answered from its headers, its body never read.
    app.add_middleware(TokenGate, settings=settings, router=app.router, guarded=GUARDED_PREFIXES)
    app.add_middleware(RequestMetrics, observability=app.state.observability)


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
