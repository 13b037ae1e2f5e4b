"""MLflow's tracking REST API (`/api/2.0/mlflow/...`) over the same storage as /api/v1.

Existing MLflow code logs here after `MLFLOW_TRACKING_URI` points at the service; the
shapes follow MLflow's REST reference, errors are MLflow's `{"error_code", "message"}`.
The routes are thin: entities, parsing, search and the repeated-step rule live in
service/mlflow/.
"""

from __future__ import annotations

from fastapi import APIRouter

from service.api.mlflow import artifacts, experiments, metrics, runs
from service.mlflow.errors import ERROR_RESPONSES, MlflowError

MLFLOW_PREFIX = "/api/2.0/mlflow"
AJAX_PREFIX = "/ajax-api/2.0/mlflow"
ARTIFACTS_PREFIX = "/api/2.0/mlflow-artifacts"
AJAX_ARTIFACTS_PREFIX = "/ajax-api/2.0/mlflow-artifacts"
router = APIRouter(tags=["mlflow"], responses=ERROR_RESPONSES)
for _resource in (experiments, runs, metrics, artifacts):
    router.include_router(_resource.router)
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
]
