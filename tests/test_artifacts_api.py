"""The artifact routes in-process (SQLite and PostgreSQL): token scopes and run tokens,
symbolic links, MLflow's upload-artifact/get-artifact/artifacts/list/DELETE, and the
/api/v1 answers' headers; what a crash leaves behind, swept (the store, and the real
server's reaper). The real MLflow client: tests/test_mlflow_artifacts.py."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service import Settings
from service.artifacts import ArtifactStore
from tests.support import live_server, wait_until
from tests.test_auth import TOKENS
from tests.test_run_tokens import API, FULL, MLFLOW, _ok, api, claim_one  # noqa: F401

PROXIED = "/api/2.0/mlflow-artifacts/artifacts"
READ = {"Authorization": f"Bearer {TOKENS['read_token']}"}


def _mlflow_run(api: TestClient) -> tuple[str, str]:  # noqa: F811
    experiment = _ok(api.post(f"{MLFLOW}/experiments/create", json={"name": "e"}, headers=FULL))
    body = {"experiment_id": experiment["experiment_id"]}
    info = _ok(api.post(f"{MLFLOW}/runs/create", json=body, headers=FULL))["run"]["info"]
    assert (
        info["artifact_uri"]
        == f"mlflow-artifacts:/{info['experiment_id']}/{info['run_id']}/artifacts"
    )
    return info["experiment_id"], info["run_id"]


def test_scopes_and_run_tokens_on_artifacts(api: TestClient) -> None:  # noqa: F811
    experiment, run = _mlflow_run(api)
    url = f"{PROXIED}/{experiment}/{run}/artifacts/a.txt"
    assert api.put(url, content=b"x").status_code == 401
    refused = api.put(url, content=b"x", headers=READ)
    assert refused.status_code == 403 and refused.json()["error_code"] == "PERMISSION_DENIED"
    _ok(api.put(url, content=b"hello", headers=FULL))
    assert api.get(url, headers=READ).content == b"hello"
    listed = _ok(api.get(PROXIED, params={"path": f"{experiment}/{run}/artifacts"}, headers=READ))
    assert listed == {"files": [{"path": "a.txt", "is_dir": False, "file_size": 5}]}

    mine = claim_one(api)
    own = f"{PROXIED}/0/{mine.run_id}/artifacts/model.ckpt"
    _ok(api.put(own, content=b"weights", headers=mine.headers))
    other = api.put(url, content=b"overwritten", headers=mine.headers)
    assert other.status_code == 403
    assert api.get(url, headers=FULL).content == b"hello"
    v1 = _ok(api.get(f"{API}/runs/{mine.run_id}/artifacts", headers=mine.headers))
    assert [(i["path"], i["size"]) for i in v1["items"]] == [("model.ckpt", 7)]


def test_a_symbolic_link_leads_nowhere(api: TestClient, settings: Settings, tmp_path: Path) -> None:  # noqa: F811
    experiment, run = _mlflow_run(api)
    _ok(api.put(f"{PROXIED}/{experiment}/{run}/artifacts/kept.txt", content=b"k", headers=FULL))
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    folder = settings.artifacts_dir / run
    (folder / "link").symlink_to(outside, target_is_directory=True)
    (folder / "file-link").symlink_to(outside / "secret.txt")

    base = f"{PROXIED}/{experiment}/{run}/artifacts"
    for path in ("link/new.txt", "link/secret.txt", "file-link"):
        assert api.put(f"{base}/{path}", content=b"evil", headers=FULL).status_code == 400, path
    assert api.get(f"{base}/link/secret.txt", headers=FULL).status_code == 400
    assert api.get(f"{API}/runs/{run}/artifacts/file-link", headers=FULL).status_code == 400
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert (outside / "secret.txt").read_text() == "secret"
    listed = _ok(api.get(f"{API}/runs/{run}/artifacts", headers=FULL))
    assert [i["path"] for i in listed["items"]] == ["kept.txt"]


def test_mlflow_upload_get_list_and_delete(api: TestClient) -> None:  # noqa: F811
    experiment, run = _mlflow_run(api)
    query = {"run_id": run, "path": "figs/page.html"}
    _ok(
        api.post(
            f"{MLFLOW}/upload-artifact", params=query, content=b"<script>1</script>", headers=FULL
        )
    )
    got = api.get("/get-artifact", params=query, headers=FULL)
    assert got.content == b"<script>1</script>"
    assert got.headers["content-type"] == "application/octet-stream"
    assert got.headers["content-disposition"].startswith("attachment")
    assert got.headers["x-content-type-options"] == "nosniff"
    missing = api.post(
        f"{MLFLOW}/upload-artifact", params={"run_id": run}, content=b"x", headers=FULL
    )
    assert missing.status_code == 400 and "path" in missing.json()["message"]
    listed = _ok(
        api.get(f"{MLFLOW}/artifacts/list", params={"run_id": run, "path": "figs"}, headers=FULL)
    )
    assert listed["root_uri"] == f"mlflow-artifacts:/{experiment}/{run}/artifacts"
    assert listed["files"] == [{"path": "figs/page.html", "is_dir": False, "file_size": 18}]
    _ok(api.delete(f"{PROXIED}/{experiment}/{run}/artifacts/figs", headers=FULL))
    assert api.get("/get-artifact", params=query, headers=FULL).status_code == 404
    nowhere = api.put(f"{PROXIED}/{experiment}/999999/artifacts/a.txt", content=b"x", headers=FULL)
    assert nowhere.status_code == 404 and nowhere.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    shapeless = api.put(f"{PROXIED}/a.txt", content=b"x", headers=FULL)
    assert shapeless.status_code == 400


def test_an_artifact_may_pass_the_small_body_limit(api: TestClient, settings: Settings) -> None:  # noqa: F811
    """Uploads have their own limit (MOMENTUM_MAX_ARTIFACT_BYTES), not the 1 MiB of other
    routes' bodies; the file arrives whole, byte for byte."""
    experiment, run = _mlflow_run(api)
    body = bytes(range(256)) * (8 * 1024)  # 2 MiB
    _ok(api.put(f"{PROXIED}/{experiment}/{run}/artifacts/big.bin", content=body, headers=FULL))
    assert (settings.artifacts_dir / run / "big.bin").read_bytes() == body
    assert api.get(f"{PROXIED}/{experiment}/{run}/artifacts/big.bin", headers=FULL).content == body


def _plant_leftovers(root: Path) -> tuple[Path, Path, Path]:
    """A partial upload two hours old, one being written now, and a half-removed run."""
    incoming, trash = root / ".incoming", root / ".trash" / "7-abc" / "deep"
    incoming.mkdir(parents=True)
    trash.mkdir(parents=True)
    stale, fresh = incoming / "tmp-stale", incoming / "tmp-fresh"
    stale.write_bytes(b"x" * 100)
    fresh.write_bytes(b"y" * 100)
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    (trash / "model.pt").write_bytes(b"z")
    return stale, fresh, root / ".trash"


def test_leftovers_of_a_crash_are_swept_and_uploads_in_progress_kept(tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    (root / "3").mkdir(parents=True)
    (root / "3" / "kept.txt").write_text("a run's file")
    stale, fresh, trash = _plant_leftovers(root)
    store = ArtifactStore(root, max_bytes=1 << 20)
    assert store.sweep_leftovers() == 2
    assert not stale.exists() and fresh.exists() and list(trash.iterdir()) == []
    assert (root / "3" / "kept.txt").read_text() == "a run's file"
    assert store.sweep_leftovers() == 0


@pytest.mark.e2e
def test_the_running_service_sweeps_what_a_crash_left(
    sqlite_template: Path, tmp_path: Path
) -> None:
    database = tmp_path / "momentum.sqlite3"
    shutil.copyfile(sqlite_template, database)
    root = tmp_path / "artifacts"
    stale, fresh, trash = _plant_leftovers(root)
    env = {
        "MOMENTUM_DATABASE_URL": f"sqlite:///{database}",
        "MOMENTUM_ARTIFACT_ROOT": str(root),
        "MOMENTUM_REAPER_INTERVAL_S": "0.2",
    }
    with live_server(env, timeout=120):
        wait_until(lambda: not stale.exists() and not any(trash.iterdir()), timeout=60)
        assert fresh.read_bytes() == b"y" * 100
