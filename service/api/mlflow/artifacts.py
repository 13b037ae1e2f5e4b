"""MLflow's artifacts: the proxied artifact API (`/api/2.0/mlflow-artifacts/artifacts/...`:
upload PUT, download GET, list GET `?path=`, DELETE), `upload-artifact`, `get-artifact`
and `artifacts/list`, as MLflow's server has them, over service/artifacts.py.

An MLflow run's `artifact_uri` is `mlflow-artifacts:/<experiment_id>/<run_id>/artifacts`,
which MLflow's client turns into paths `<experiment_id>/<run_id>/artifacts/<file>` under
the proxied API; the run's id picks its folder. Reads need the read scope, writes the
ingest scope; a run token writes its own run's artifacts only.
"""

from __future__ import annotations

from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse

from service import artifacts
from service.auth import Caller, CallerDep, Scope, requires
from service.db import transaction
from service.deps import SettingsDep, StateDep
from service.mlflow import entities
from service.mlflow.errors import MlflowError, invalid, missing
from service.mlflow.schemas import MlflowEmpty, documented
from service.write_rights import check_own_run, check_writable

READ = requires(Scope.read)
RUN_INGEST = requires(Scope.ingest, run_token=True)
# Mounted at /api/2.0/mlflow-artifacts (and /ajax-api/...), beside MLflow's tracking API.
proxied_router = APIRouter()
# Under /api/2.0/mlflow (upload-artifact, artifacts/list) and at the root (get-artifact).
router = APIRouter()
root_router = APIRouter()
ArtifactPath = Annotated[str, Query(examples=["0/1/artifacts/model.json"])]
RUN_PATH_SHAPE = "artifact paths are <experiment_id>/<run_id>/artifacts/<path>"


def store(settings: Any) -> artifacts.ArtifactStore:
    return artifacts.ArtifactStore(settings.artifacts_dir, settings.max_artifact_bytes)


def checked_parts(path: str) -> list[str]:
    try:
        return artifacts.safe_parts(path)
    except artifacts.BadArtifactPath as exc:
        raise invalid(str(exc)) from exc


def run_and_parts(path: str) -> tuple[int, list[str]]:
    """The run a proxied path names and the path in its folder; 400 when it names none."""
    parts = checked_parts(path)
    shaped = len(parts) >= 3 and parts[2] == "artifacts"
    if not shaped or not all(part.isascii() and part.isdigit() for part in parts[:2]):
        raise invalid(f"invalid artifact path {path[:200]!r}: {RUN_PATH_SHAPE}")
    return entities.run_id_of(parts[1]), parts[3:]


def _check_run(state: Any, run_id: int, caller: Caller) -> None:
    with transaction(state.sessions, write=False) as session:
        run = entities.load_run(session, str(run_id))
        check_writable(session, run, caller)


async def receive_file(
    request: Request, state: Any, caller: Caller, run_id: int, parts: list[str]
) -> None:
    """Check the caller may write the run, then stream the body into the file."""
    check_own_run(caller, run_id)
    await to_thread.run_sync(_check_run, state, run_id, caller)
    try:
        await store(state.settings).save(run_id, parts, request.stream())
    except artifacts.BadArtifactPath as exc:
        raise invalid(str(exc)) from exc
    except artifacts.ArtifactTooLarge as exc:
        raise MlflowError(413, "INVALID_PARAMETER_VALUE", str(exc)) from exc


def send_file(settings: Any, run_id: int, parts: list[str]) -> FileResponse:
    """The file, streamed, always as an attachment (MLflow's rule: no artifact renders on
    the service's own origin)."""
    try:
        path = store(settings).file(run_id, parts)
    except artifacts.BadArtifactPath as exc:
        raise invalid(str(exc)) from exc
    except artifacts.ArtifactMissing as exc:
        raise missing(f"No artifact at {'/'.join(parts)[:200]!r} of run {run_id}") from exc
    media_type, _ = artifacts.safe_media_type(parts[-1])
    headers = artifacts.download_headers(parts[-1], inline=False)
    return FileResponse(path, media_type=media_type, headers=headers)


@proxied_router.put(
    "/artifacts/{artifact_path:path}", dependencies=[RUN_INGEST], **documented(MlflowEmpty)
)
async def upload_artifact_proxied(
    artifact_path: str, request: Request, state: StateDep, caller: CallerDep
) -> dict[str, Any]:
    """Upload one file (the body, streamed) to `<experiment_id>/<run_id>/artifacts/<path>`."""
    run_id, parts = run_and_parts(artifact_path)
    await receive_file(request, state, caller, run_id, parts)
    return {}


@proxied_router.get("/artifacts/{artifact_path:path}", dependencies=[READ])
def download_artifact_proxied(artifact_path: str, settings: SettingsDep) -> FileResponse:
    """Download one file, streamed, as an attachment."""
    run_id, parts = run_and_parts(artifact_path)
    return send_file(settings, run_id, parts)


@proxied_router.get("/artifacts", dependencies=[READ])
def list_artifacts_proxied(settings: SettingsDep, path: ArtifactPath = "") -> dict[str, Any]:
    """The entries of one folder: `{"files": [{"path", "is_dir", "file_size"}]}` (names
    relative to the folder; nothing for a path that is no folder)."""
    if path == "" or len(checked_parts(path)) < 3:
        return {}  # above a run's folder: MLflow's root holds nothing served here
    run_id, parts = run_and_parts(path)
    try:
        files = store(settings).listing(run_id, parts)
    except artifacts.BadArtifactPath as exc:
        raise invalid(str(exc)) from exc
    return {"files": files} if files else {}


@proxied_router.delete(
    "/artifacts/{artifact_path:path}", dependencies=[RUN_INGEST], **documented(MlflowEmpty)
)
def delete_artifact_proxied(
    artifact_path: str, state: StateDep, caller: CallerDep
) -> dict[str, Any]:
    """Delete a file or a folder of artifacts."""
    run_id, parts = run_and_parts(artifact_path)
    check_own_run(caller, run_id)
    _check_run(state, run_id, caller)
    try:
        store(state.settings).delete(run_id, parts)
    except artifacts.BadArtifactPath as exc:
        raise invalid(str(exc)) from exc
    return {}


def _run_in_query(run_id: str | None, run_uuid: str | None, path: str | None) -> int:
    if not (run_id or run_uuid):
        raise invalid("Request must specify run_id or run_uuid.")
    if not path:
        raise invalid("Request must specify path.")
    return entities.run_id_of(run_id or run_uuid)


@router.post("/upload-artifact", dependencies=[RUN_INGEST], **documented(MlflowEmpty))
async def upload_artifact(
    request: Request,
    state: StateDep,
    caller: CallerDep,
    run_id: str | None = None,
    run_uuid: str | None = None,
    path: ArtifactPath | None = None,
) -> dict[str, Any]:
    """Upload the body as the run's artifact at `path` (MLflow's web UI's route)."""
    run = _run_in_query(run_id, run_uuid, path)
    await receive_file(request, state, caller, run, checked_parts(path or ""))
    return {}


@router.get("/artifacts/list", dependencies=[READ])
def list_artifacts(
    state: StateDep,
    run_id: str | None = None,
    run_uuid: str | None = None,
    path: ArtifactPath | None = None,
) -> dict[str, Any]:
    """A run's artifacts in one folder: `{"root_uri", "files": [{"path", ...}]}`, paths
    from the run's root."""
    parts = checked_parts(path) if path else []
    with_prefix = "/".join(parts)
    with transaction(state.sessions, write=False) as session:
        run = entities.load_run(session, run_id or run_uuid)
        root_uri = entities.runs_json(session, [run])[0]["info"]["artifact_uri"]
    files = store(state.settings).listing(run.id, parts)
    for entry in files:
        entry["path"] = f"{with_prefix}/{entry['path']}" if with_prefix else entry["path"]
    out: dict[str, Any] = {"root_uri": root_uri}
    if files:
        out["files"] = files
    return out


@root_router.get("/get-artifact", dependencies=[READ])
def get_artifact(
    settings: SettingsDep,
    run_id: str | None = None,
    run_uuid: str | None = None,
    path: ArtifactPath | None = None,
) -> FileResponse:
    """One artifact of a run, as an attachment (MLflow's web UI's route)."""
    run = _run_in_query(run_id, run_uuid, path)
    return send_file(settings, run, checked_parts(path or ""))


@router.post("/logged-models/search", dependencies=[READ], **documented(MlflowEmpty))
def search_logged_models() -> dict[str, Any]:
    """No logged models are kept here: always an empty page. MLflow's client asks before
    it lists or downloads a folder of a run's artifacts (`runs:/<id>/<folder>`), so this
    answer, not ENDPOINT_NOT_FOUND, is what lets those calls work."""
    return {}
