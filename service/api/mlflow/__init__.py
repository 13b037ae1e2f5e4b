"""MLflow's tracking REST API (`/api/2.0/mlflow/...`) over the same storage as /api/v1.

Existing MLflow code logs here after `MLFLOW_TRACKING_URI` points at the service; the
shapes follow MLflow's REST reference, errors are MLflow's `{"error_code", "message"}`
in MLflow's words. The routes are thin: entities, parsing, search and the repeated-step
rule live in service/mlflow/. `server_router` answers `GET /health` and `GET /version`
as MLflow's server does (open, plain text).
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from service.api.mlflow import artifacts, experiments, metrics, runs
from service.mlflow.errors import ERROR_RESPONSES, MlflowError

MLFLOW_PREFIX = "/api/2.0/mlflow"
AJAX_PREFIX = "/ajax-api/2.0/mlflow"
# The MLflow release whose tracking API this one follows (GET /version answers it).
MLFLOW_VERSION = "3.17.0"
ARTIFACTS_PREFIX = "/api/2.0/mlflow-artifacts"
AJAX_ARTIFACTS_PREFIX = "/ajax-api/2.0/mlflow-artifacts"
router = APIRouter(tags=["mlflow"], responses=ERROR_RESPONSES)
for _resource in (experiments, runs, metrics, artifacts):
    router.include_router(_resource.router)
server_router = APIRouter(tags=["mlflow"])


@server_router.get("/health", response_class=PlainTextResponse)
def mlflow_health() -> str:
    """`OK`, as MLflow's server answers its health check (the process is up)."""
    return "OK"


@server_router.get("/version", response_class=PlainTextResponse)
def mlflow_version() -> str:
    """The MLflow version whose tracking API this service follows, as plain text."""
    return MLFLOW_VERSION


# MLflow's proxied artifact API, its own prefix; /get-artifact, at the root.
artifacts_router = APIRouter(tags=["mlflow"], responses=ERROR_RESPONSES)
artifacts_router.include_router(artifacts.proxied_router)
root_router = APIRouter(tags=["mlflow"], responses=ERROR_RESPONSES)
root_router.include_router(artifacts.root_router)

__all__ = [
    "AJAX_ARTIFACTS_PREFIX",
    "AJAX_PREFIX",
    "ARTIFACTS_PREFIX",
    "MLFLOW_PREFIX",
    "MlflowError",
    "artifacts_router",
    "root_router",
    "router",
    "server_router",
]
