"""Tokens and roles, checked on every route the app serves (enumerated, not hand-listed)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from service import Settings, create_app
from service.auth import Role, role_for_token

TOKENS = {"token": "full-secret", "worker_token": "worker-secret", "read_token": "read-secret"}
OPEN_PATHS = {"/healthz", "/readyz", "/metrics", "/docs", "/openapi.json"}


@pytest.fixture
def guarded(settings: Settings) -> Iterator[TestClient]:
    secrets = {name: SecretStr(value) for name, value in TOKENS.items()}
    # GET /events streams until its time is up; TestClient reads a response to its end.
    short_streams = {"event_stream_max_s": 0.2}
    with TestClient(create_app(settings.model_copy(update={**secrets, **short_streams}))) as client:
        yield client


def api_operations(client: TestClient) -> list[tuple[str, str]]:
    """Every /api/v1 operation, from the app's own route table via its OpenAPI schema."""
    paths = client.app.openapi()["paths"]  # type: ignore[attr-defined]
    operations = [
        (method.upper(), re.sub(r"\{[^}]+\}", "1", path))
        for path, methods in paths.items()
        if path.startswith("/api/v1")
        for method in methods
    ]
    assert len(operations) >= 10
    return operations


def _call(client: TestClient, method: str, path: str, token: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = {} if method in ("POST", "PATCH", "PUT") else None
    return client.request(method, path, headers=headers, json=body).status_code


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_every_api_route_refuses_missing_and_wrong_tokens(guarded: TestClient) -> None:
    for method, path in api_operations(guarded):
        assert _call(guarded, method, path) == 401, (method, path)
        assert _call(guarded, method, path, "wrong") == 401, (method, path)
        response = guarded.request(method, path, headers={"Authorization": "Basic abc"})
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_read_token_reads_but_never_writes(guarded: TestClient) -> None:
    for method, path in api_operations(guarded):
        status = _call(guarded, method, path, TOKENS["read_token"])
        if method == "GET":
            assert status != 401 and status != 403, (method, path)
        else:
            assert status == 403, (method, path)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_worker_token_ingests_but_cannot_delete(guarded: TestClient) -> None:
    worker = {"Authorization": f"Bearer {TOKENS['worker_token']}"}
    created = guarded.post("/api/v1/runs", json={"name": "w"}, headers=worker)
    assert created.status_code == 201
    run_id = created.json()["id"]
    logged = guarded.post(
        f"/api/v1/runs/{run_id}/metrics",
        json={"points": [{"key": "loss", "step": 0, "value": 1}]},
        headers=worker,
    )
    assert logged.status_code == 200
    assert guarded.delete(f"/api/v1/runs/{run_id}", headers=worker).status_code == 403
    full = {"Authorization": f"Bearer {TOKENS['token']}"}
    assert guarded.delete(f"/api/v1/runs/{run_id}", headers=full).status_code == 204


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_open_routes_stay_open(guarded: TestClient) -> None:
    for path in OPEN_PATHS:
        assert guarded.get(path).status_code == 200, path


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_without_tokens_everything_is_open(client: TestClient) -> None:
    assert client.get("/api/v1/runs").status_code == 200
    assert client.post("/api/v1/runs", json={}).status_code == 201


def test_role_lookup() -> None:
    settings = Settings(**TOKENS)  # type: ignore[arg-type]
    assert role_for_token(settings, "full-secret") == Role.full
    assert role_for_token(settings, "worker-secret") == Role.worker
    assert role_for_token(settings, "read-secret") == Role.read
    assert role_for_token(settings, "read-secret ") is None
    assert role_for_token(settings, "") is None
