"""Schema fuzzing: schemathesis generates requests from the app's own OpenAPI schema.

Every `/api/v1` operation but the endless event stream, and every MLflow operation under
`/api/2.0/mlflow` (the `/ajax-api/2.0/mlflow` copies run the same functions and are left
out of the schema), is called with generated valid and invalid input and the full token;
no answer may be a 5xx, and every answer must be documented by the schema (status code,
content type, headers, body). Every error must come in its API's own shape: the
contract's `{"error": {"code", "message", "detail"}}` under /api/v1, MLflow's
`{"error_code", "message"}` under MLflow's prefix. Each operation gets a fresh database
holding a run with points, params and tags, a job, a sweep (id 1 of each) and an MLflow
experiment, on both backends; the MLflow schema gives run "1", experiment "0" and metric
"loss" as examples, so generated requests also reach past the 404 into the routes' own
work (logging, the repeated-step rule, history reads). Alone:
`.venv/bin/pytest tests/test_fuzz.py` (`-m "not postgres"`: SQLite only).

`FUZZ_EXAMPLES=200` (default 25 per /api/v1 operation and backend; the MLflow routes get
`FUZZ_MLFLOW_EXAMPLES`, default 15) searches deeper. The token goes in through
schemathesis's own config, so its `ignored_auth` check also resends requests without it
and expects the 401.

The schema comes from `create_app(...).openapi()`, which connects to nothing. Requests
go in-process through schemathesis's ASGI transport to `CURRENT`, which hands them to the
test's app, started and stopped by a TestClient around the test. Building an app costs
about a second (mostly its OpenAPI schema), so one app, `APP`, serves every test: each
gives it fresh settings (its own database) before the TestClient runs its lifespan, which
opens the engine from `app.state.settings`, the only place a running app reads them.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from schemathesis.specs.openapi.checks import positive_data_acceptance
from starlette.types import Receive, Scope, Send

from service import Settings, create_app
from service.mlflow.errors import MLFLOW_PREFIXES

TOKEN = "fuzz-full-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
API = "/api/v1"
MLFLOW = "/api/2.0/mlflow"
# Examples per operation and backend: ~60 operations on two backends in about three
# minutes; FUZZ_EXAMPLES=200 for a deeper run by hand.
MAX_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "15"))
# MLflow's 16 operations are a thin adapter over the same storage: fewer each.
MLFLOW_EXAMPLES = int(os.environ.get("FUZZ_MLFLOW_EXAMPLES", "10"))
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
APP = create_app(Settings(token=SecretStr(TOKEN), **LIMITS))
OPENAPI = APP.openapi()


def _schema(prefix: str) -> Any:
    loaded = schemathesis.openapi.from_dict(copy.deepcopy(OPENAPI)).include(
        path_regex=f"^{prefix}/"
    )
    loaded.app = CURRENT
    loaded.config.update(headers=AUTH)
    return loaded


schema = _schema(API).exclude(path=f"{API}/events")
mlflow_schema = _schema(MLFLOW)


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
    # MLflow's view of run 1 (experiment "0"): params, tags and a repeated step; and
    # an experiment "1" of its own.
    logged = {
        "run_id": "1",
        "params": [{"key": "momentum", "value": "0.9"}, {"key": "lr", "value": "0.1"}],
        "tags": [{"key": "team", "value": "fuzz"}],
        "metrics": [{"key": "loss", "value": 0.5, "timestamp": 1, "step": 0}],
    }
    assert http.post(f"{MLFLOW}/runs/log-batch", json=logged).status_code == 200
    assert http.post(f"{MLFLOW}/experiments/create", json={"name": "e"}).status_code == 200


@pytest.fixture
def fuzzed_app(settings: Settings) -> Iterator[FastAPI]:
    app = APP
    app.state.settings = settings.model_copy(update={"token": SecretStr(TOKEN), **LIMITS})
    with TestClient(app) as http:
        _seed(http)
        CURRENT.app = app
        try:
            yield app
        finally:
            CURRENT.app = None


def _settings(examples: int) -> Any:
    return hypothesis.settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,  # the same examples every run: a failure reproduces
        suppress_health_check=list(hypothesis.HealthCheck),
    )


def _call_and_validate(case: schemathesis.Case) -> None:
    # positive_data_acceptance is left out: a schema cannot say "this run exists" or
    # "a cnn needs the digits dataset", so valid-looking input may rightly get 404/409/422.
    response = case.call_and_validate(excluded_checks=[positive_data_acceptance])
    if response.status_code >= 400:
        assert_error_shape(case.path, response.json())


def assert_error_shape(path: str, body: Any) -> None:
    """Each API's own error shape, exactly (the schema alone would let extra keys by)."""
    if path.startswith(MLFLOW_PREFIXES):
        assert isinstance(body, dict) and set(body) == {"error_code", "message"}, body
        assert isinstance(body["error_code"], str) and body["error_code"].isupper(), body
        assert isinstance(body["message"], str) and body["message"], body
    else:
        assert isinstance(body, dict) and set(body) == {"error"}, body
        error = body["error"]
        assert set(error) == {"code", "message", "detail"}, body
        assert isinstance(error["code"], str) and isinstance(error["message"], str), body
        assert isinstance(error["detail"], list), body


@schema.parametrize()
@_settings(MAX_EXAMPLES)
def test_api_conforms_to_its_schema(case: schemathesis.Case, fuzzed_app: FastAPI) -> None:
    _call_and_validate(case)


@mlflow_schema.parametrize()
@_settings(MLFLOW_EXAMPLES)
def test_mlflow_api_conforms_to_its_schema(case: schemathesis.Case, fuzzed_app: FastAPI) -> None:
    _call_and_validate(case)


# Inputs found by hand that were 5xx (issue 15: numbers past int64 or a float, filter
# values one backend could not compare, a name past an indexed column, a grid compared
# pairwise): each goes through the same checks as the generated ones, on both backends.
KNOWN_BAD = [
    pytest.param("/runs", "POST", {"body": {"params": {"momentum": 10**400}}}, id="int 10**400"),
    pytest.param("/runs", "POST", {"body": {"params": {"optimizer": "o" * 65}}}, id="optimizer 65"),
    pytest.param(
        "/runs/{run_id}",
        "PATCH",
        {"path_parameters": {"run_id": 1}, "body": {"params": {"seed": 10**400}}},
        id="patch int 10**400",
    ),
    *(
        pytest.param("/runs", "GET", {"query": {"param": f"seed:{value}"}}, id=f"param {value}")
        for value in ('{"a":1}', "[1]", "NaN", "Infinity", "1e999")
    ),
    pytest.param(
        "/jobs/{job_id}/heartbeat",
        "POST",
        {"path_parameters": {"job_id": 1}, "body": {"lease_token": "t", "step": 10**20}},
        id="heartbeat step 10**20",
    ),
    pytest.param(
        "/sweeps",
        "POST",
        {"body": {"name": "s", "base": TINY, "grid": {"seed": list(range(40_000))}}},
        id="grid of 40000",
    ),
]


# The same on MLflow's routes: ids and page tokens that `isdigit()` took but `int()` or
# int64 could not ('²', 5,000 digits, 2**66), a NUL that PostgreSQL refuses in text, and
# a LIKE pattern that once backtracked for minutes.
SUPERSCRIPT_TWO = "\u00b2"
HUGE_DIGITS = "9" * 5000
KNOWN_BAD_MLFLOW = [
    pytest.param("/runs/get", "GET", {"query": {"run_id": SUPERSCRIPT_TWO}}, id="run_id ²"),
    pytest.param("/runs/get", "GET", {"query": {"run_id": HUGE_DIGITS}}, id="run_id 5000 digits"),
    pytest.param(
        "/experiments/get", "GET", {"query": {"experiment_id": SUPERSCRIPT_TWO}}, id="exp ²"
    ),
    pytest.param("/runs/delete", "POST", {"body": {"run_id": SUPERSCRIPT_TWO}}, id="delete ²"),
    pytest.param(
        "/runs/search", "POST", {"body": {"experiment_ids": [SUPERSCRIPT_TWO]}}, id="search ²"
    ),
    pytest.param(
        "/runs/search",
        "POST",
        {"body": {"experiment_ids": ["0"], "page_token": HUGE_DIGITS}},
        id="search page_token 5000 digits",
    ),
    pytest.param(
        "/runs/search",
        "POST",
        {"body": {"experiment_ids": ["0"], "filter": f"attributes.status LIKE '{'%' * 1000}x'"}},
        id="LIKE with 1000 %",
    ),
    pytest.param(
        "/metrics/get-history",
        "GET",
        {"query": {"run_id": "1", "metric_key": "loss", "page_token": str(2**66)}},
        id="history page_token 2**66",
    ),
    pytest.param(
        "/metrics/get-history",
        "GET",
        {"query": {"run_id": "1", "metric_key": "lo\x00ss"}},
        id="history NUL key",
    ),
    pytest.param(
        "/metrics/get-history-bulk-interval",
        "GET",
        {"query": {"run_ids": "1", "metric_key": "loss", "end_step": str(2**66)}},
        id="bulk end_step 2**66",
    ),
    pytest.param(
        "/experiments/get-by-name",
        "GET",
        {"query": {"experiment_name": "e\x00"}},
        id="experiment name NUL",
    ),
]


@pytest.mark.parametrize(("path", "method", "parts"), KNOWN_BAD_MLFLOW)
def test_known_bad_mlflow_inputs_conform_to_the_schema(
    path: str, method: str, parts: dict[str, Any], fuzzed_app: FastAPI
) -> None:
    case = mlflow_schema[f"{MLFLOW}{path}"][method].Case(headers=AUTH, **parts)
    _call_and_validate(case)  # no 5xx, a documented status, MLflow's error shape


@pytest.mark.parametrize(("path", "method", "parts"), KNOWN_BAD)
def test_known_bad_inputs_conform_to_the_schema(
    path: str, method: str, parts: dict[str, Any], fuzzed_app: FastAPI
) -> None:
    # A hand-made case gets no configured headers: the token goes in here.
    case = schema[f"{API}{path}"][method].Case(headers=AUTH, **parts)
    _call_and_validate(case)  # its checks include "no 5xx"
