"""A run's artifacts for the dashboard: the list, and each file with a safe content type
(images inline, everything else an attachment; nosniff and a policy that runs nothing).
The files are the ones MLflow's client logs (service/api/mlflow/artifacts.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import FileResponse
from pydantic import BaseModel

from service import artifacts
from service.api.runs import RunId, load_run
from service.auth import Scope, requires
from service.deps import SessionDep, SettingsDep
from service.errors import ApiError

router = APIRouter(prefix="/runs", tags=["artifacts"])
MAX_ITEMS = 1000


class ArtifactFile(BaseModel):
    path: str
    size: int
    image: bool


class RunArtifacts(BaseModel):
    run_id: int
    items: list[ArtifactFile]
    truncated: bool


def _store(settings: SettingsDep) -> artifacts.ArtifactStore:
    return artifacts.ArtifactStore(settings.artifacts_dir, settings.max_artifact_bytes)


def _bad_path(exc: artifacts.BadArtifactPath) -> ApiError:
    detail = [{"loc": ["path", "path"], "msg": str(exc), "type": "value_error"}]
    return ApiError(400, "invalid_path", str(exc), detail)


@router.get("/{run_id}/artifacts", dependencies=[requires(Scope.read)])
def list_run_artifacts(run_id: RunId, session: SessionDep, settings: SettingsDep) -> RunArtifacts:
    """Every file of the run (path from the run's folder, size, whether it is an image
    the dashboard shows), sorted by path; at most 1,000 (`truncated` says when more)."""
    load_run(session, run_id)
    found, truncated = _store(settings).walk(run_id, MAX_ITEMS)
    items = [
        ArtifactFile(path=f["path"], size=f["size"], image=artifacts.safe_media_type(f["path"])[1])
        for f in found
    ]
    return RunArtifacts(run_id=run_id, items=items, truncated=truncated)


@router.get(
    "/{run_id}/artifacts/{path:path}",
    dependencies=[requires(Scope.read)],
    response_class=FileResponse,
    responses={200: {"description": "the file's bytes"}},
)
def download_run_artifact(
    run_id: RunId,
    path: Annotated[str, Path(description="The file's path in the run's artifacts.")],
    session: SessionDep,
    settings: SettingsDep,
) -> FileResponse:
    """One artifact, streamed: PNG, JPEG, GIF and WebP inline (the dashboard shows them),
    anything else as an attachment of a type no browser renders as a page."""
    try:
        parts = artifacts.safe_parts(path)
        load_run(session, run_id)
        found = _store(settings).file(run_id, parts)
    except artifacts.BadArtifactPath as exc:
        raise _bad_path(exc) from exc
    except artifacts.ArtifactMissing as exc:
        raise ApiError(404, "not_found", f"run {run_id} has no artifact {path[:200]!r}") from exc
    media_type, image = artifacts.safe_media_type(parts[-1])
    headers = artifacts.download_headers(parts[-1], inline=image)
    return FileResponse(found, media_type=media_type, headers=headers)
