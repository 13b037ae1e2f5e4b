"""Schema fuzzing: schemathesis generates requests from the app's own OpenAPI schema.

Every `/api/v1` operation but the endless event stream is called with generated valid
and invalid input and the full token; no answer may be a 5xx, and every answer must be
documented by the schema (status code, content type, headers, body). Each operation gets
a fresh database holding a run with points, a job and a sweep (id 1 of each), on both
backends. Alone: `.venv/bin/pytest tests/test_fuzz.py` (`-m "not postgres"`: SQLite only).

`FUZZ_EXAMPLES=200` (default 25 per operation and backend) searches deeper. The token
goes in through schemathesis's own config, so its `ignored_auth` check also resends
requests without it and expects the 401.

The schema comes from `create_app(...).openapi()`, which connects to nothing. Requests
go in-process through schemathesis's ASGI transport to `CURRENT`, which hands them to the
test's own app (started, and stopped, by a TestClient around the test).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import hypothesis
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from schemathesis.specs.openapi.checks import positive_data_acceptance
from starlette.types import Receive, Scope, Send

from service import Settings, create_app

TOKEN = "fuzz-full-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
API = "/api/v1"
# Examples per operation and backend: ~30 operations stay within a couple of minutes.
MAX_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
TINY = {"dataset": "ravine", "model": "linear", "steps": 5, "eval_every": 5}
LIMITS = {"max_grid_size": 16, "max_compare_runs": 20}


class CurrentApp:
    """One ASGI app for schemathesis to hold; each test points it at a fresh service app.
    Its lifespan is a no-op: the test's TestClient runs the real one."""

    def __init__(self) -> None:
        self.app: FastAPI | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return
        assert self.app is not None, "no test app is running"
        await self.app(scope, receive, send)


CURRENT = CurrentApp()
schema = (
    schemathesis.openapi.from_dict(create_app(Settings(token=SecretStr(TOKEN))).openapi())
    .include(path_regex=f"^{API}/")
    .exclude(path=f"{API}/events")
)
schema.app = CURRENT
schema.config.update(headers=AUTH)


def _seed(http: TestClient) -> None:
    """Something for generated ids to find: id 1 exists for runs, jobs and sweeps."""
    http.headers.update(AUTH)
    assert http.post(f"{API}/runs", json={"name": "seed"}).status_code == 201
    batch = [
        {"key": key, "step": step, "value": 1.0 / (step + 1)}
        for key in ("loss", "accuracy")
        for step in range(50)
    ]
    assert http.post(f"{API}/runs/1/metrics", json={"points": batch}).status_code == 200
    assert http.post(f"{API}/jobs", json={"config": TINY}).status_code == 201
    sweep = {"name": "s", "base": TINY, "grid": {"momentum": [0.0, 0.9]}}
    assert http.post(f"{API}/sweeps", json=sweep).status_code == 201


@pytest.fixture
def fuzzed_app(settings: Settings) -> Iterator[FastAPI]:
    app = create_app(settings.model_copy(update={"token": SecretStr(TOKEN), **LIMITS}))
    with TestClient(app) as http:
        _seed(http)
        CURRENT.app = app
        try:
            yield app
        finally:
            CURRENT.app = None


@schema.parametrize()
@hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,  # the same examples every run: a failure reproduces
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_api_conforms_to_its_schema(case: schemathesis.Case, fuzzed_app: FastAPI) -> None:
    # positive_data_acceptance is left out: a schema cannot say "this run exists" or
    # "a cnn needs the digits dataset", so valid-looking input may rightly get 404/409/422.
    case.call_and_validate(excluded_checks=[positive_data_acceptance])
