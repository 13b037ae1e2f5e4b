"""Operations endpoints and the error shape outside the resource routes."""

from __future__ import annotations

import gc
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import momentum
from service import Settings, create_app
from service.api.ops import UNREACHABLE
from service.app import app_from_environment
from service.migrate import head_revision
from tests.support import free_port, live_server


def test_front_door_is_the_dashboard(client: TestClient) -> None:
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "Momentum Monitor" in response.text


def test_health_ready_version(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["schema_revision"] == head_revision()
    version = client.get("/api/v1/version").json()
    assert version["server"] == momentum.__version__
    assert version["contract"] == momentum.CONTRACT_VERSION
    assert version["database"] in ("sqlite", "postgresql")


def test_readyz_names_pending_migrations(tmp_path: Path) -> None:
    with TestClient(create_app(Settings(data_dir=tmp_path))) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert "momentum db upgrade" in response.json()["reason"]


@pytest.mark.parametrize("where", ["postgres_closed_port", "sqlite_directory"])
def test_readyz_keeps_the_database_error_to_the_log(
    where: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The open /readyz says the database did not answer, not the driver's text (hosts,
    ports, users, paths): that goes to the log for the operator."""
    port = free_port()  # nothing listens there
    urls = {
        "postgres_closed_port": f"postgresql+psycopg://momentum_user:pw@127.0.0.1:{port}/db",
        "sqlite_directory": f"sqlite:///{tmp_path}",  # a directory is no database file
    }
    secrets = {
        "postgres_closed_port": ["127.0.0.1", str(port), "momentum_user", "refused"],
        "sqlite_directory": [str(tmp_path), "SELECT 1", "unable to open"],
    }[where]
    with TestClient(create_app(Settings(database_url=urls[where]))) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "reason": UNREACHABLE}
    for secret in secrets:
        assert secret not in response.text
    logged = "\n".join(record.getMessage() + (record.exc_text or "") for record in caplog.records)
    assert "readyz" in logged and secrets[-1] in logged


@pytest.mark.e2e
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_trailing_slash_is_a_404_never_a_redirect_to_the_host_header(database_url: str) -> None:
    """Through the real server with a forged Host: no `Location` built from it, just the
    contract's 404 (or MLflow's on its routes). The dashboard and clients never add one."""
    with live_server({"MOMENTUM_DATABASE_URL": database_url}) as url:
        for path in ("/api/v1/runs/", "/api/v1/runs/?limit=5", "/api/2.0/mlflow/runs/get/"):
            response = httpx.get(f"{url}{path}", headers={"Host": "evil.example"})
            assert response.status_code == 404, (path, response.headers)
            assert "location" not in response.headers
            assert "evil.example" not in response.text
            body = response.json()
            assert "error" in body if path.startswith("/api/v1") else "error_code" in body
        assert httpx.get(f"{url}/api/v1/runs", headers={"Host": "evil.example"}).is_success


def test_prometheus_metrics_count_requests_and_points(client: TestClient) -> None:
    run = client.post("/api/v1/runs", json={}).json()
    client.post(
        f"/api/v1/runs/{run['id']}/metrics",
        json={"points": [{"key": "loss", "step": s, "value": 1} for s in range(7)]},
    )
    text = client.get("/metrics").text
    assert (
        'momentum_http_requests_total{method="POST",route="metrics-ingest_points",status="200"} 1.0'
        in text
    )
    assert "momentum_points_ingested_total 7.0" in text
    assert "momentum_http_request_duration_seconds_bucket" in text


def test_errors_use_the_contract_shape(client: TestClient) -> None:
    unknown_route = client.get("/api/v1/nothing-here")
    assert unknown_route.status_code == 404
    assert unknown_route.json()["error"]["code"] == "not_found"
    malformed = client.post(
        "/api/v1/runs", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert malformed.status_code == 400
    assert malformed.json()["error"]["code"] == "invalid_json"
    wrong_method = client.put("/api/v1/runs")
    assert wrong_method.status_code == 405
    assert set(wrong_method.json()["error"]) == {"code", "message", "detail"}
    unknown_query = client.get("/api/v1/runs", params={"limt": 5})
    assert unknown_query.status_code == 422
    assert unknown_query.json()["error"]["detail"][0]["loc"] == ["query", "limt"]


def test_a_served_app_exempts_its_startup_heap_from_garbage_collection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOMENTUM_DATABASE_URL", f"sqlite:///{tmp_path / 'm.sqlite3'}")
    assert gc.get_freeze_count() == 0
    try:
        app = app_from_environment()
        assert isinstance(app, FastAPI)
        # Modules, routes, schemas: the long-lived part of the heap, the app with them.
        assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()
