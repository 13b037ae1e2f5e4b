"""Tokens and roles, checked on every route the app serves (enumerated, not hand-listed)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from pydantic import SecretStr
from starlette.types import Message, Receive, Scope, Send

from service import Settings, create_app
from service.auth import Role, TokenGate, role_for_token
from tests.jobs_support import TINY

TOKENS = {"token": "full-secret", "worker_token": "worker-secret", "read_token": "read-secret"}
OPEN_PATHS = {"/healthz", "/readyz", "/metrics", "/docs", "/openapi.json"}
# Every route outside /api/v1, all open by the contract: docs, ops, the dashboard.
OPEN_ROUTES = OPEN_PATHS | {"/docs/oauth2-redirect", "/redoc", "/", "/vendor/plotly.min.js"}
# The dashboard's larger Plotly.js bundles, loaded only by the views that draw with them.
OPEN_ROUTES |= {"/vendor/plotly-cartesian.min.js", "/vendor/plotly-strict.min.js"}
OPEN_ROUTES |= {"/health", "/version"}  # as MLflow's server answers them
# MLflow's tracking API (service/api/mlflow.py): the same tokens and roles, MLflow's error shape.
MLFLOW_PREFIXES = ("/api/2.0/mlflow/", "/ajax-api/2.0/mlflow/")
# MLflow's artifact routes (service/api/mlflow/artifacts.py): the same tokens and shape.
ARTIFACT_PREFIXES = ("/api/2.0/mlflow-artifacts/", "/ajax-api/2.0/mlflow-artifacts/")
MLFLOW_READS_BY_POST = (
    "/experiments/search",
    "/runs/search",
    "/experiments/search-datasets",
    "/logged-models/search",
)
FORGED_RUN_TOKEN = "mmr.1." + "A" * 43  # the shape of a run token, of no job
STATIC_DIR = Path(__file__).resolve().parent.parent / "service" / "static"


@pytest.fixture
def guarded(settings: Settings) -> Iterator[TestClient]:
    secrets = {name: SecretStr(value) for name, value in TOKENS.items()}
    # GET /events streams until its time is up; TestClient reads a response to its end.
    short_streams = {"event_stream_max_s": 0.2}
    long_leases = {"lease_seconds": 3600}  # a run token lives as long as the test
    update = {**secrets, **short_streams, **long_leases}
    with TestClient(create_app(settings.model_copy(update=update))) as client:
        yield client


# What a run token may write, on its own run: every other write is 403.
RUN_TOKEN_WRITES = {
    ("POST", "/api/v1/runs/{run_id}/metrics"),
    ("POST", "/api/v1/runs/{run_id}/heartbeat"),
    ("PATCH", "/api/v1/runs/{run_id}"),
    *(
        ("POST", f"{prefix}runs/{name}")
        for prefix in MLFLOW_PREFIXES
        for name in (
            "update",
            "log-batch",
            "log-metric",
            "log-parameter",
            "set-tag",
            "delete-tag",
            "log-inputs",
        )
    ),
    # The run is named in the query or the artifact path: the route checks it.
    *(("POST", f"{prefix}upload-artifact") for prefix in MLFLOW_PREFIXES),
    *(
        (method, f"{prefix}artifacts/{{artifact_path:path}}")
        for prefix in ARTIFACT_PREFIXES
        for method in ("PUT", "DELETE")
    ),
}


@pytest.fixture
def run_token(guarded: TestClient) -> str:
    """The run token of a claimed job whose run is run 1 (the id every route's path is
    filled in with), held for the whole test."""
    submitted = guarded.post("/api/v1/jobs", json={"config": TINY}, headers=_as("token"))
    assert submitted.json()["run_id"] == 1, submitted.text
    claim = {"worker_id": "w", "device": "cpu", "frameworks": ["torch"]}
    claimed = guarded.post("/api/v1/jobs/claim", json=claim, headers=_as("worker_token"))
    return str(claimed.json()["run_token"])


def routes(client: TestClient) -> list[tuple[str, str]]:
    """(method, path) of every route the app serves, from its route table: routes left
    out of the OpenAPI schema are here too."""
    return sorted(
        (method, context.path)
        for context in iter_route_contexts(client.app.routes)  # type: ignore[attr-defined]
        for method in context.methods or ()
        if method != "HEAD" and context.path
    )


def api_operations(client: TestClient) -> list[tuple[str, str]]:
    """Every /api/v1 operation, with each path parameter filled in with 1."""
    operations = [
        (method, re.sub(r"\{[^}]+\}", "1", path))
        for method, path in routes(client)
        if path.startswith("/api/v1")
    ]
    assert len(operations) >= 30
    # The schema-driven checks (tests/test_fuzz.py, the start-up guard) see them all.
    documented = client.app.openapi()["paths"]  # type: ignore[attr-defined]
    hidden = {
        (method, path)
        for method, path in routes(client)
        if path.startswith("/api/v1")
        and method.lower() not in documented.get(re.sub(r":[a-z]+}", "}", path), {})
    }
    assert not hidden, f"API routes missing from the OpenAPI schema: {hidden}"
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
        assert response.headers["www-authenticate"].startswith("Bearer")
        for token in ("", " ", TOKENS["token"] + "x", TOKENS["token"][:-1], FORGED_RUN_TOKEN):
            assert _call(guarded, method, path, token) == 401, (method, path, token)
        # The event stream's ?token= (for EventSource) is checked alike; elsewhere it is
        # no parameter at all (422) and no way in either.
        expected = {401} if path == "/api/v1/events" else {401, 422}
        assert guarded.request(method, path, params={"token": "wrong"}).status_code in expected


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_read_token_reads_but_never_writes(guarded: TestClient) -> None:
    for method, path in api_operations(guarded):
        status = _call(guarded, method, path, TOKENS["read_token"])
        if method == "GET":
            assert status != 401 and status != 403, (method, path)
        else:
            assert status == 403, (method, path)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_run_token_reads_and_writes_only_its_own_run(guarded: TestClient, run_token: str) -> None:
    """Every route of the table, with a run token of run 1: reads pass, the writes of
    RUN_TOKEN_WRITES pass on run 1 and are 403 on run 2, everything else is 403."""
    operations = [
        (method, path)
        for method, path in routes(guarded)
        if path.startswith(("/api/v1", *MLFLOW_PREFIXES, *ARTIFACT_PREFIXES, "/get-artifact"))
    ]
    assert RUN_TOKEN_WRITES <= set(operations), RUN_TOKEN_WRITES - set(operations)
    for method, template in operations:
        path = re.sub(r"\{[^}]+\}", "1", template)
        status = _call(guarded, method, path, run_token)
        reads = method == "GET" or template.endswith(MLFLOW_READS_BY_POST)
        if reads or (method, template) in RUN_TOKEN_WRITES:
            assert status not in (401, 403), (method, path, status)
        else:
            assert status == 403, (method, path, status)
        if (method, template) in RUN_TOKEN_WRITES and "{run_id}" in template:
            other = re.sub(r"\{[^}]+\}", "2", template)
            assert _call(guarded, method, other, run_token) == 403, (method, other)


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


def mlflow_operations(client: TestClient) -> list[tuple[str, str]]:
    """Every MLflow route, under /api/2.0/mlflow and /ajax-api/2.0/mlflow, the artifact
    prefixes and /get-artifact."""
    prefixes = (*MLFLOW_PREFIXES, *ARTIFACT_PREFIXES, "/get-artifact")
    operations = [(m, p) for m, p in routes(client) if p.startswith(prefixes)]
    assert len(operations) >= 2 * 15
    # tests/test_fuzz.py fuzzes the /api/2.0 copies from the schema: none may hide.
    documented = client.app.openapi()["paths"]  # type: ignore[attr-defined]
    hidden = {
        (method, path)
        for method, path in operations
        if path.startswith(MLFLOW_PREFIXES[0]) and method.lower() not in documented.get(path, {})
    }
    assert not hidden, f"MLflow routes missing from the OpenAPI schema: {hidden}"
    return operations


def assert_mlflow_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error_code", "message"}, body
    assert body["error_code"] == code and isinstance(body["message"], str), body


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_every_mlflow_route_refuses_missing_and_wrong_tokens(guarded: TestClient) -> None:
    """401 in MLflow's shape with the code its client knows (`UNAUTHENTICATED`), for
    every MLflow route: no token, a wrong one, Basic credentials, a `?token=`."""
    for method, path in mlflow_operations(guarded):
        body = {} if method == "POST" else None
        for token in (None, "wrong", "", " ", TOKENS["token"] + "x", TOKENS["token"][:-1]):
            headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
            response = guarded.request(method, path, headers=headers, json=body)
            assert_mlflow_error(response, 401, "UNAUTHENTICATED")
            assert response.headers["www-authenticate"].startswith("Bearer")
        basic = guarded.request(method, path, headers={"Authorization": "Basic abc"}, json=body)
        assert_mlflow_error(basic, 401, "UNAUTHENTICATED")
        # Only the event stream takes a token in the query string.
        query = guarded.request(method, path, params={"token": TOKENS["token"]}, json=body)
        assert_mlflow_error(query, 401, "UNAUTHENTICATED")


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_mlflow_routes_apply_the_same_roles(guarded: TestClient) -> None:
    for method, path in mlflow_operations(guarded):
        response = guarded.request(
            method, path, headers=_as("read_token"), json={} if method == "POST" else None
        )
        if method == "GET" or path.endswith(MLFLOW_READS_BY_POST):
            assert response.status_code not in (401, 403), (method, path)
        else:
            assert_mlflow_error(response, 403, "PERMISSION_DENIED")
    mlflow = "/api/2.0/mlflow"
    created = guarded.post(f"{mlflow}/runs/create", json={}, headers=_as("worker_token"))
    run_id = created.json()["run"]["info"]["run_id"]
    metric = {"key": "loss", "value": 1.0, "timestamp": 1, "step": 0}
    batch = {"run_id": run_id, "metrics": [metric]}
    logged = guarded.post(f"{mlflow}/runs/log-batch", json=batch, headers=_as("worker_token"))
    assert logged.status_code == 200
    delete = {"run_id": run_id}
    refused = guarded.post(f"{mlflow}/runs/delete", json=delete, headers=_as("worker_token"))
    assert_mlflow_error(refused, 403, "PERMISSION_DENIED")
    assert (
        guarded.post(f"{mlflow}/runs/delete", json=delete, headers=_as("token")).status_code == 200
    )
    gone = guarded.get(f"{mlflow}/runs/get", params={"run_id": run_id}, headers=_as("token"))
    assert gone.json()["run"]["info"]["lifecycle_stage"] == "deleted"  # MLflow's soft delete


def _as(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[role]}"}


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_worker_token_cannot_delete_or_cancel_anything(guarded: TestClient) -> None:
    """Every DELETE and every cancel of the route table, on resources that exist: 403,
    and the resource is untouched."""
    full, worker = _as("token"), _as("worker_token")
    run = guarded.post("/api/v1/runs", json={"name": "r"}, headers=full).json()
    job = guarded.post("/api/v1/jobs", json={"config": TINY}, headers=full).json()
    grid = {"name": "s", "base": TINY, "grid": {"seed": [0, 1]}}
    sweep = guarded.post("/api/v1/sweeps", json=grid, headers=full).json()
    ids = {"run_id": run["id"], "job_id": job["id"], "sweep_id": sweep["id"]}
    destructive = [
        (method, path)
        for method, path in routes(guarded)
        if path.startswith("/api/v1") and (method == "DELETE" or path.endswith("/cancel"))
    ]
    assert len(destructive) >= 4  # runs and sweeps deleted; jobs and sweeps cancelled
    for method, template in destructive:
        path = re.sub(r"\{(\w+)(:\w+)?\}", lambda m: str(ids[m.group(1)]), template)
        response = guarded.request(method, path, headers=worker)
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["error"]["code"] == "forbidden"
    assert guarded.get(f"/api/v1/runs/{run['id']}", headers=full).json()["status"] == "running"
    assert guarded.get(f"/api/v1/jobs/{job['id']}", headers=full).json()["status"] == "queued"
    assert guarded.get(f"/api/v1/sweeps/{sweep['id']}", headers=full).json()["status"] == "queued"
    # Nor may it queue work, retry it, or start sweeps: those are the full token's.
    assert guarded.post("/api/v1/jobs", json={"config": TINY}, headers=worker).status_code == 403
    assert guarded.post("/api/v1/sweeps", json=grid, headers=worker).status_code == 403
    assert guarded.post(f"/api/v1/jobs/{job['id']}/retry", headers=worker).status_code == 403
    # The full token may do all of it.
    assert guarded.post(f"/api/v1/jobs/{job['id']}/cancel", headers=full).status_code == 200
    assert guarded.delete(f"/api/v1/sweeps/{sweep['id']}", headers=full).status_code == 204


def gate_answer(client: TestClient, method: str, path: str, token: str | None) -> int | None:
    """What the app's TokenGate alone answers (None: it lets the request through),
    given a body it must never read."""
    app = client.app
    assert isinstance(app, FastAPI)
    config = next(m for m in app.user_middleware if m.cls is TokenGate)
    answers: list[int | None] = []

    async def through(_scope: Scope, _receive: Receive, _send: Send) -> None:
        answers.append(None)

    async def unread() -> Message:
        raise AssertionError(f"the gate read the body of {method} {path}")

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            answers.append(message["status"])

    gate = TokenGate(through, *config.args, **config.kwargs)
    headers = [(b"authorization", f"Bearer {token}".encode())] if token is not None else []
    scope = {"type": "http", "method": method, "path": path, "root_path": "", "app": app}
    asyncio.run(gate({**scope, "query_string": b"", "headers": headers}, unread, send))
    return answers[0]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_gate_refuses_from_the_headers_exactly_what_the_routes_refuse(
    guarded: TestClient, run_token: str
) -> None:
    """For every route and every token: when the route's own check answers 401 or 403,
    the gate in front of the body limits has already answered the same, without reading
    the body; otherwise it lets the request through. (A run token writing another run
    named in an MLflow body is refused by the route: the gate never reads the body.)"""
    operations = [*api_operations(guarded), *mlflow_operations(guarded)]
    tokens = (None, "wrong", FORGED_RUN_TOKEN, TOKENS["read_token"], TOKENS["worker_token"])
    for token in (*tokens, run_token):
        for method, path in operations:
            routed = _call(guarded, method, path, token)
            expected = routed if routed in (401, 403) else None
            assert gate_answer(guarded, method, path, token) == expected, (method, path, token)
    for method, path in operations:
        assert gate_answer(guarded, method, path, TOKENS["token"]) is None, (method, path)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_open_routes_stay_open(guarded: TestClient) -> None:
    for path in OPEN_PATHS:
        assert guarded.get(path).status_code == 200, path
    outside_api = {
        path
        for _, path in routes(guarded)
        if not path.startswith(("/api/v1", *MLFLOW_PREFIXES, *ARTIFACT_PREFIXES, "/get-artifact"))
    }
    # A new route outside /api/v1 gets no token check: it must be meant to be open.
    assert outside_api <= OPEN_ROUTES, outside_api - OPEN_ROUTES
    for path in outside_api:
        assert guarded.get(path).status_code == 200, path
    static = [p for p in STATIC_DIR.rglob("*") if p.is_file()]
    assert any(p.name == "index.html" for p in static)
    for file in static:
        url = f"/static/{file.relative_to(STATIC_DIR).as_posix()}"
        assert guarded.get(url).status_code == 200, url


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
