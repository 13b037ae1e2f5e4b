"""Artifacts through the real MLflow client against the real service (SQLite and
PostgreSQL): log_artifact, log_image, log_figure, log_dict, log_text, list, download;
the size limit; path-escape attempts (400, nothing written outside); removal with the run."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.tracking._tracking_service import utils as tracking_utils
from requests import HTTPError

from tests.support import live_server

LIMIT = 64 * 1024


@pytest.fixture
def served(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, Path]]:
    """The service (artifacts under tmp_path/store, 64 KiB a file) and MLflow pointed at it."""
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    root = tmp_path / "store"
    env = {
        "MOMENTUM_DATABASE_URL": database_url,
        "MOMENTUM_ARTIFACT_ROOT": str(root),
        "MOMENTUM_MAX_ARTIFACT_BYTES": str(LIMIT),
    }
    # MLflow caches each run's artifact repository (its server's URL) by run id, and
    # every test's fresh database numbers its runs from 1 again.
    tracking_utils._artifact_repos_cache.clear()
    with live_server(env, timeout=120) as url:
        mlflow.set_tracking_uri(url)
        try:
            yield url, root
        finally:
            if mlflow.active_run() is not None:
                mlflow.end_run()
            mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
            tracking_utils._artifact_repos_cache.clear()


def _loss_figure() -> Any:
    """A matplotlib figure, as a training script draws one (no display: Agg)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(2, 2))
    figure.add_subplot().plot([1.0, 0.5, 0.3, 0.2])
    return figure


def _files_under(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def test_the_mlflow_client_logs_lists_and_downloads_artifacts(
    served: tuple[str, Path], tmp_path: Path
) -> None:
    url, root = served
    experiment = mlflow.set_experiment("artifacts")
    notes = tmp_path / "notes.txt"
    notes.write_text("momentum 0.9\n")
    with mlflow.start_run() as active:
        mlflow.log_artifact(str(notes))
        mlflow.log_artifact(str(notes), artifact_path="deep/er")
        mlflow.log_dict({"lr": 0.1, "momentum": [0.5, 0.9]}, "config/params.json")
        mlflow.log_text("hello ✓", "readme.md")
        mlflow.log_image(np.full((4, 6, 3), 200, dtype=np.uint8), "plots/square.png")
        mlflow.log_figure(_loss_figure(), "plots/loss.png")
    run_id = active.info.run_id
    uri = f"mlflow-artifacts:/{experiment.experiment_id}/{run_id}/artifacts"
    assert active.info.artifact_uri == uri
    client = MlflowClient()
    assert client.get_run(run_id).info.artifact_uri == uri

    listed = {(f.path, f.is_dir) for f in client.list_artifacts(run_id)}
    assert listed == {
        ("config", True),
        ("deep", True),
        ("notes.txt", False),
        ("plots", True),
        ("readme.md", False),
    }
    [deep] = client.list_artifacts(run_id, "deep/er")
    assert (deep.path, deep.file_size) == ("deep/er/notes.txt", len("momentum 0.9\n"))

    fetched = Path(
        mlflow.artifacts.download_artifacts(run_id=run_id, dst_path=str(tmp_path / "back"))
    )
    assert json.loads((fetched / "config/params.json").read_text()) == {
        "lr": 0.1,
        "momentum": [0.5, 0.9],
    }
    assert (fetched / "readme.md").read_text() == "hello ✓"
    assert (fetched / "deep/er/notes.txt").read_text() == "momentum 0.9\n"
    assert (fetched / "plots/square.png").read_bytes().startswith(b"\x89PNG")
    assert (fetched / "plots/loss.png").read_bytes().startswith(b"\x89PNG")
    # On disk: the run's folder under MOMENTUM_ARTIFACT_ROOT, nothing else but scratch folders.
    assert _files_under(root / run_id) == {
        "notes.txt",
        "deep/er/notes.txt",
        "config/params.json",
        "readme.md",
        "plots/square.png",
        "plots/loss.png",
    }

    # /api/v1 for the dashboard: the list, an image inline, the rest as attachments.
    api = httpx.Client(base_url=f"{url}/api/v1")
    listing = api.get(f"/runs/{run_id}/artifacts").json()
    assert listing["truncated"] is False
    assert [(i["path"], i["image"]) for i in listing["items"]] == [
        ("config/params.json", False),
        ("deep/er/notes.txt", False),
        ("notes.txt", False),
        ("plots/loss.png", True),
        ("plots/square.png", True),
        ("readme.md", False),
    ]
    image = api.get(f"/runs/{run_id}/artifacts/plots/square.png")
    assert image.headers["content-type"] == "image/png"
    assert image.headers["content-disposition"].startswith("inline")
    assert image.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'none'" in image.headers["content-security-policy"]
    text = api.get(f"/runs/{run_id}/artifacts/readme.md")
    assert text.headers["content-disposition"].startswith("attachment")
    assert text.text == "hello ✓"

    # One server for both parts: each start costs seconds.
    _size_limit_and_path_escapes(url, root, tmp_path)

    # Removed for good with the run (/api/v1's hard delete).
    assert api.delete(f"/runs/{run_id}").status_code == 204
    assert not (root / run_id).exists()
    assert api.get(f"/runs/{run_id}/artifacts").status_code == 404


def _size_limit_and_path_escapes(url: str, root: Path, tmp_path: Path) -> None:
    mlflow.set_experiment("limits")
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(LIMIT + 1))
    with mlflow.start_run() as active:
        mlflow.log_text("kept", "kept.txt")
        with pytest.raises((MlflowException, HTTPError), match="MOMENTUM_MAX_ARTIFACT_BYTES"):
            mlflow.log_artifact(str(big))
    run_id = active.info.run_id
    experiment_id = active.info.experiment_id
    assert _files_under(root / run_id) == {"kept.txt"}

    base = f"{url}/api/2.0/mlflow-artifacts/artifacts/{experiment_id}/{run_id}/artifacts"
    attempts = [
        "%2e%2e/%2e%2e/escaped.txt",  # `..` the client did not normalise away
        "..%2F..%2Fescaped.txt",
        "%252e%252e/escaped.txt",  # decoded twice
        "a%5C..%5C..%5Cescaped.txt",  # backslashes
        "nul%00.txt",
        "%2Fetc%2Fescaped.txt",  # absolute, after the prefix
        "a//b.txt",
    ]
    with httpx.Client() as http:
        for attempt in attempts:
            answer = http.put(f"{base}/{attempt}", content=b"x")
            assert answer.status_code == 400, attempt
            assert answer.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        listing = http.get(
            f"{url}/api/2.0/mlflow-artifacts/artifacts",
            params={"path": f"{experiment_id}/{run_id}/artifacts/../../.."},
        )
        assert listing.status_code == 400
        v1 = http.get(f"{url}/api/v1/runs/{run_id}/artifacts/%2e%2e/%2e%2e/momentum.sqlite3")
        assert v1.status_code == 400 and v1.json()["error"]["code"] == "invalid_path"
    # Nothing was written anywhere but the one file (scratch folders are empty).
    assert {p for p in _files_under(root / run_id)} == {"kept.txt"}
    assert not list((root / ".incoming").iterdir())
    assert not any(p.name.startswith("escaped") for p in tmp_path.rglob("*"))
