"""Bad input: every request in the matrix gets a 4xx in the contract's error shape, and the
database holds exactly what it held before (every table's rows, compared in full).

The matrix runs on both backends in-process, and a part of it through the real server.
SQL-looking strings that are valid data (a run's name, a tag, a text search) are stored
or searched for as the plain text they are; where they are not valid (a metric key, a
sort field, a run id list) they are refused like any other bad value.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, inspect, text

from service import Settings, create_app
from service.mlflow.errors import is_mlflow_path
from tests.support import live_server

API = "/api/v1"
SQL = "'; DROP TABLE runs; --"
TINY = {"dataset": "ravine", "model": "linear", "steps": 5, "eval_every": 5}
# Small limits, so "over the limit" is cheap to send.
LIMITS = {"max_body_bytes": 1 << 20, "max_points_per_batch": 10_000, "max_grid_size": 16}
JSON = {"content-type": "application/json"}
HUGE_PARAM = b'{"params": {"momentum": 1' + b"0" * 400 + b"}}"  # 10**400, a JSON integer


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (the migrations' own included), ordered by primary key:
    row counts, point blocks' bytes and all."""
    inspector = inspect(engine)
    tables = sorted(inspector.get_table_names())
    dump: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as connection:
        for table in tables:
            key = inspector.get_pk_constraint(table).get("constrained_columns") or [
                column["name"] for column in inspector.get_columns(table)
            ]
            order = ", ".join(f'"{column}"' for column in key)
            rows = connection.execute(text(f'SELECT * FROM "{table}" ORDER BY {order}'))
            dump[table] = [tuple(row) for row in rows]
    assert {"runs", "series", "point_blocks", "jobs", "sweeps"} <= dump.keys()
    return dump


def assert_error_shape(response: httpx.Response, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "detail"}, error
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["detail"], list)
    for item in error["detail"]:
        assert set(item) == {"loc", "msg", "type"}, item
        assert isinstance(item["loc"], list) and isinstance(item["msg"], str)
    if code is not None:
        assert error["code"] == code, error


def assert_mlflow_error(response: httpx.Response, status: int, code: str | None) -> str:
    """MLflow's error shape, exactly (on its routes); returns the message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error_code", "message"}, body
    assert code is None or body["error_code"] == code, body
    assert isinstance(body["message"], str) and body["message"], body
    return str(body["message"])


@dataclass(frozen=True)
class Bad:
    """One bad request and the answer it must get."""

    name: str
    method: str
    path: str
    status: int
    code: str | None = None
    json: Any = None
    content: bytes | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def send(self, http: TestClient | httpx.Client) -> httpx.Response:
        if self.content is not None:
            return http.request(
                self.method, self.path, content=self.content, headers=JSON, params=self.params
            )
        return http.request(self.method, self.path, json=self.json, params=self.params)


def point(**overrides: Any) -> dict[str, Any]:
    return {"points": [{"key": "loss", "step": 1, "value": 0.5, **overrides}]}


RUN = f"{API}/runs/1"
METRICS = f"{RUN}/metrics"
V = "validation_error"

MALFORMED = [
    Bad("metrics: truncated JSON", "POST", METRICS, 400, "invalid_json", content=b'{"points": ['),
    Bad("metrics: not JSON", "POST", METRICS, 400, "invalid_json", content=b"loss=1"),
    Bad("metrics: empty body", "POST", METRICS, 400, "invalid_json", content=b""),
    Bad("runs: truncated JSON", "POST", f"{API}/runs", 400, "invalid_json", content=b'{"name": '),
    Bad("patch: trailing comma", "PATCH", RUN, 400, "invalid_json", content=b'{"name": "a",}'),
    Bad("jobs: single quotes", "POST", f"{API}/jobs", 400, "invalid_json", content=b"{'a': 1}"),
    Bad("sweeps: truncated", "POST", f"{API}/sweeps", 400, "invalid_json", content=b'{"grid":'),
    Bad("claim: truncated", "POST", f"{API}/jobs/claim", 400, "invalid_json", content=b"{"),
    Bad("metrics: a list, not an object", "POST", METRICS, 422, V, json=[1, 2]),
    Bad("runs: a string, not an object", "POST", f"{API}/runs", 422, V, json="run"),
]
WRONG_TYPES = [
    Bad("points: an object", "POST", METRICS, 422, V, json={"points": {"key": "loss"}}),
    Bad("value: true", "POST", METRICS, 422, V, json=point(value=True)),
    Bad("value: other text", "POST", METRICS, 422, V, json=point(value="1.5")),
    Bad("value: null", "POST", METRICS, 422, V, json=point(value=None)),
    Bad("step: text", "POST", METRICS, 422, V, json=point(step="7")),
    Bad("step: true", "POST", METRICS, 422, V, json=point(step=True)),
    Bad("wall_time: false", "POST", METRICS, 422, V, json=point(wall_time=False)),
    Bad("key: a number", "POST", METRICS, 422, V, json=point(key=5)),
    Bad("run name: a number", "POST", f"{API}/runs", 422, V, json={"name": 5}),
    Bad("run tags: a list", "POST", f"{API}/runs", 422, V, json={"tags": ["a"]}),
    Bad("run tag value: an object", "POST", f"{API}/runs", 422, V, json={"tags": {"a": {}}}),
    Bad("run status: unknown", "POST", f"{API}/runs", 422, V, json={"status": "done"}),
    Bad("diverged: 0", "PATCH", RUN, 422, V, json={"diverged": 0}),
    Bad("diverged: text", "PATCH", RUN, 422, V, json={"diverged": "yes"}),
    Bad(
        "config seed: false",
        "POST",
        f"{API}/jobs",
        422,
        V,
        json={"config": {**TINY, "seed": False}},
    ),
    Bad(
        "config steps: text", "POST", f"{API}/jobs", 422, V, json={"config": {**TINY, "steps": "5"}}
    ),
    Bad("config: a list", "POST", f"{API}/jobs", 422, V, json={"config": [TINY]}),
    Bad("grid: a list", "POST", f"{API}/sweeps", 422, V, json={"name": "s", "grid": [1]}),
    Bad(
        "grid values: a number",
        "POST",
        f"{API}/sweeps",
        422,
        V,
        json={"name": "s", "grid": {"seed": 1}},
    ),
    Bad(
        "frameworks: a string",
        "POST",
        f"{API}/jobs/claim",
        422,
        V,
        json={"worker_id": "w", "frameworks": "torch"},
    ),
    Bad("limit: text", "GET", f"{API}/runs", 422, V, params={"limit": "ten"}),
    Bad("run id: text", "GET", f"{API}/runs/abc", 422, V),
]
MISSING = [
    Bad("metrics: no points", "POST", METRICS, 422, V, json={}),
    Bad("metrics: empty points", "POST", METRICS, 422, V, json={"points": []}),
    Bad("point: no value", "POST", METRICS, 422, V, json={"points": [{"key": "loss", "step": 1}]}),
    Bad("point: no step", "POST", METRICS, 422, V, json={"points": [{"key": "loss", "value": 1}]}),
    Bad("point: no key", "POST", METRICS, 422, V, json={"points": [{"step": 1, "value": 1}]}),
    Bad("jobs: no config", "POST", f"{API}/jobs", 422, V, json={"name": "j"}),
    Bad("sweeps: no grid", "POST", f"{API}/sweeps", 422, V, json={"name": "s", "base": TINY}),
    Bad("sweeps: no name", "POST", f"{API}/sweeps", 422, V, json={"grid": {"seed": [1]}}),
    Bad("claim: no worker_id", "POST", f"{API}/jobs/claim", 422, V, json={"device": "cpu"}),
    Bad("job heartbeat: no lease", "POST", f"{API}/jobs/1/heartbeat", 422, V, json={"step": 1}),
    Bad("compare: no run_ids", "GET", f"{API}/compare", 422, V, params={"keys": "loss"}),
    Bad("compare: no keys", "GET", f"{API}/compare", 422, V, params={"run_ids": "1"}),
]
HUGE = [
    Bad("step 2**64", "POST", METRICS, 422, V, json=point(step=2**64)),
    Bad("step 2**63", "POST", METRICS, 422, V, json=point(step=2**63)),
    Bad(
        "step 1e400",
        "POST",
        METRICS,
        422,
        V,
        content=b'{"points":[{"key":"a","step":1e400,"value":1}]}',
    ),
    Bad(
        "wall_time 1e400",
        "POST",
        METRICS,
        422,
        V,
        content=b'{"points":[{"key":"a","step":1,"value":1,"wall_time":1e400}]}',
    ),
    Bad("wall_time 1e300", "POST", METRICS, 422, V, json=point(wall_time=1e300)),
    Bad("param 1e400", "POST", f"{API}/runs", 422, V, content=b'{"params": {"lr": 1e400}}'),
    Bad("param NaN", "PATCH", RUN, 422, V, content=b'{"params": {"lr": NaN}}'),
    Bad(
        "summary Infinity",
        "POST",
        f"{API}/jobs/1/complete",
        422,
        V,
        content=b'{"lease_token": "t", "summary": {"x": Infinity}}',
    ),
    Bad("config lr 1e400", "POST", f"{API}/jobs", 422, V, content=b'{"config": {"lr": 1e400}}'),
    # Integers wider than int64 overflow a float once indexed or grouped (were 500s).
    Bad("param momentum 10**400", "POST", f"{API}/runs", 422, V, content=HUGE_PARAM),
    Bad("param seed 2**63", "PATCH", RUN, 422, V, json={"params": {"seed": 2**63}}),
    Bad("param -2**63 - 1, nested", "PATCH", RUN, 422, V, json={"params": {"a": [-(2**63) - 1]}}),
    Bad(
        "summary int 10**400",
        "POST",
        f"{API}/jobs/1/complete",
        422,
        V,
        content=b'{"lease_token": "t", "summary": {"x": 1' + b"0" * 400 + b"}}",
    ),
    Bad(
        "job heartbeat step 10**20",
        "POST",
        f"{API}/jobs/1/heartbeat",
        422,
        V,
        content=b'{"lease_token": "t", "step": 99999999999999999999}',
    ),
    Bad(
        "job heartbeat total 2**63",
        "POST",
        f"{API}/jobs/1/heartbeat",
        422,
        V,
        json={"lease_token": "t", "total": 2**63},
    ),
    Bad(
        "config log_every 2**64",
        "POST",
        f"{API}/jobs",
        422,
        V,
        json={"config": {**TINY, "log_every": 2**64}},
    ),
    Bad(
        "config seed 2**64", "POST", f"{API}/jobs", 422, V, json={"config": {**TINY, "seed": 2**64}}
    ),
    Bad("run id 2**64", "GET", f"{API}/runs/{2**64}", 422, V),
    Bad("run id 2**64 on ingest", "POST", f"{API}/runs/{2**64}/metrics", 422, V, json=point()),
    Bad("offset 2**64", "GET", f"{API}/runs", 422, V, params={"offset": 2**64}),
    Bad("max_points 1e400", "GET", f"{METRICS}/loss", 422, V, params={"max_points": "1e400"}),
    Bad("end_step 2**64", "GET", f"{METRICS}/loss", 422, V, params={"end_step": 2**64}),
    Bad(
        "run_ids 2**64",
        "GET",
        f"{API}/compare",
        422,
        V,
        params={"run_ids": str(2**64), "keys": "loss"},
    ),
    Bad(
        "smoothing 1e400",
        "GET",
        f"{API}/compare",
        422,
        V,
        params={"run_ids": "1", "keys": "loss", "smoothing": "1e400"},
    ),
]
STEPS = [
    # A step is any int64 (negative ones too, as MLflow's): past int64 is refused.
    Bad("step -2**63-1", "POST", METRICS, 422, V, json=point(step=-(2**63) - 1)),
    Bad("step 1.5", "POST", METRICS, 422, V, json=point(step=1.5)),
    Bad("step 2.0", "POST", METRICS, 422, V, json=point(step=2.0)),
    Bad(
        "start_step -2**63-1",
        "GET",
        f"{METRICS}/loss",
        422,
        V,
        params={"start_step": -(2**63) - 1},
    ),
    Bad("start_step 0.5", "GET", f"{METRICS}/loss", 422, V, params={"start_step": 0.5}),
    Bad(
        "job heartbeat step -1",
        "POST",
        f"{API}/jobs/1/heartbeat",
        422,
        V,
        json={"lease_token": "t", "step": -1},
    ),
]
KEYS = [
    Bad("key empty", "POST", METRICS, 422, V, json=point(key="")),
    Bad("key 251 chars", "POST", METRICS, 422, V, json=point(key="k" * 251)),
    Bad("key with a comma", "POST", METRICS, 422, V, json=point(key="loss,acc")),
    Bad("key with a newline", "POST", METRICS, 422, V, json=point(key="loss\n")),
    Bad("key SQL", "POST", METRICS, 422, V, json=point(key=SQL)),
    Bad("history key 251 chars", "GET", f"{METRICS}/{'k' * 251}", 422, V),
    Bad("history key SQL", "GET", f"{METRICS}/{SQL}", 422, V),
    Bad(
        "compare keys: trailing comma",
        "GET",
        f"{API}/compare",
        422,
        V,
        params={"run_ids": "1", "keys": "loss,"},
    ),
    Bad(
        "compare keys: only a comma",
        "GET",
        f"{API}/compare",
        422,
        V,
        params={"run_ids": "1", "keys": ","},
    ),
    Bad(
        "compare keys: empty", "GET", f"{API}/compare", 422, V, params={"run_ids": "1", "keys": ""}
    ),
    Bad(
        "compare keys: 251 chars",
        "GET",
        f"{API}/compare",
        422,
        V,
        params={"run_ids": "1", "keys": "loss," + "k" * 251},
    ),
    Bad("compare keys: SQL", "GET", f"{API}/compare", 422, V, params={"run_ids": "1", "keys": SQL}),
    Bad(
        "export keys: double comma",
        "GET",
        f"{API}/export.csv",
        422,
        V,
        params={"run_ids": "1", "keys": "loss,,acc"},
    ),
    Bad(
        "summary key: empty",
        "GET",
        f"{API}/compare/summary",
        422,
        V,
        params={"run_ids": "1", "key": ""},
    ),
]
UNKNOWN = [
    Bad("ingest into no run", "POST", f"{API}/runs/999/metrics", 404, "not_found", json=point()),
    Bad("get no run", "GET", f"{API}/runs/999", 404, "not_found"),
    Bad("patch no run", "PATCH", f"{API}/runs/999", 404, "not_found", json={"name": "x"}),
    Bad("delete no run", "DELETE", f"{API}/runs/999", 404, "not_found"),
    Bad("heartbeat no run", "POST", f"{API}/runs/999/heartbeat", 404, "not_found"),
    Bad("history of no key", "GET", f"{METRICS}/nope", 404, "not_found"),
    Bad(
        "compare no run",
        "GET",
        f"{API}/compare",
        404,
        "not_found",
        params={"run_ids": "1,999", "keys": "loss"},
    ),
    Bad("get no job", "GET", f"{API}/jobs/999", 404, "not_found"),
    Bad("cancel no job", "POST", f"{API}/jobs/999/cancel", 404, "not_found"),
    Bad("retry no job", "POST", f"{API}/jobs/999/retry", 404, "not_found"),
    Bad(
        "heartbeat no job",
        "POST",
        f"{API}/jobs/999/heartbeat",
        404,
        "not_found",
        json={"lease_token": "t"},
    ),
    Bad(
        "complete no job",
        "POST",
        f"{API}/jobs/999/complete",
        404,
        "not_found",
        json={"lease_token": "t"},
    ),
    Bad("stale lease", "POST", f"{API}/jobs/1/complete", 409, json={"lease_token": "t"}),
    Bad("get no sweep", "GET", f"{API}/sweeps/999", 404, "not_found"),
    Bad("delete no sweep", "DELETE", f"{API}/sweeps/999", 404, "not_found"),
    Bad("run id 0", "GET", f"{API}/runs/0", 422, V),
    Bad("no such route", "GET", f"{API}/nope", 404),
    Bad("no such method", "PUT", RUN, 405, "method_not_allowed", json={}),
]
LIMIT_CASES = [
    Bad(
        "body over the limit",
        "POST",
        METRICS,
        413,
        "body_too_large",
        content=b'{"points": [' + b" " * (1 << 20) + b"]}",
    ),
    Bad(
        "run body over the limit",
        "POST",
        f"{API}/runs",
        413,
        "body_too_large",
        json={"name": "x", "tags": {"t": "y" * 1000}, "params": {"p": "z" * (1 << 20)}},
    ),
    Bad(
        "points over the cap",
        "POST",
        METRICS,
        413,
        "too_many_points",
        json={"points": [{"key": "l", "step": s, "value": 1} for s in range(10_001)]},
    ),
    Bad(
        "grid over the cap",
        "POST",
        f"{API}/sweeps",
        422,
        V,
        json={"name": "s", "base": TINY, "grid": {"seed": list(range(17))}},
    ),
    Bad(
        "grid over the cap, multiplied",
        "POST",
        f"{API}/sweeps",
        422,
        V,
        json={
            "name": "s",
            "base": TINY,
            "grid": {"seed": list(range(5)), "lr": [0.1, 0.2, 0.3, 0.4]},
        },
    ),
    Bad("limit over the page size", "GET", f"{API}/runs", 422, V, params={"limit": 1001}),
    Bad("limit 0", "GET", f"{API}/jobs", 422, V, params={"limit": 0}),
    Bad("key over 250", "POST", METRICS, 422, V, json=point(key="a/" * 126)),
]
QUERY = [
    Bad(
        "unknown query parameter",
        "GET",
        f"{API}/runs",
        422,
        "unknown_query_parameter",
        params={"limt": 5},
    ),
    Bad(
        "unknown query parameter on a write",
        "POST",
        METRICS,
        422,
        "unknown_query_parameter",
        json=point(),
        params={"dry_run": 1},
    ),
    Bad(
        "unknown query parameter on create",
        "POST",
        f"{API}/runs",
        422,
        "unknown_query_parameter",
        json={},
        params={"x": 1},
    ),
    Bad("unknown body field", "POST", f"{API}/runs", 422, V, json={"nme": "typo"}),
    Bad("unknown point field", "POST", METRICS, 422, V, json=point(stp=2)),
    Bad("unknown sort field", "GET", f"{API}/runs", 422, V, params={"sort": "loss"}),
    Bad("sort SQL", "GET", f"{API}/runs", 422, V, params={"sort": SQL}),
    Bad("sort with a second column", "GET", f"{API}/runs", 422, V, params={"sort": "name, id"}),
    Bad("status SQL", "GET", f"{API}/runs", 422, V, params={"status": SQL}),
    Bad("tag without a colon", "GET", f"{API}/runs", 422, V, params={"tag": SQL}),
    # A param filter compares one JSON scalar that params can hold (object: SQLite 500;
    # 1e999: PostgreSQL 500).
    Bad("param filter: an object", "GET", f"{API}/runs", 422, V, params={"param": 'seed:{"a":1}'}),
    Bad("param filter: an array", "GET", f"{API}/runs", 422, V, params={"param": "seed:[1]"}),
    Bad("param filter: 1e999", "GET", f"{API}/runs", 422, V, params={"param": "seed:1e999"}),
    Bad("param filter: 2**63", "GET", f"{API}/runs", 422, V, params={"param": f"seed:{2**63}"}),
    Bad(
        "run_ids SQL",
        "GET",
        f"{API}/compare",
        422,
        V,
        params={"run_ids": f"1{SQL}", "keys": "loss"},
    ),
    Bad(
        "mode SQL",
        "GET",
        f"{API}/compare/summary",
        422,
        V,
        params={"run_ids": "1", "key": "loss", "mode": SQL},
    ),
    Bad(
        "by SQL",
        "GET",
        f"{API}/compare/groups",
        422,
        V,
        params={"run_ids": "1", "key": "loss", "by": SQL},
    ),
    Bad("job status SQL", "GET", f"{API}/jobs", 422, V, params={"status": SQL}),
    Bad(
        "config optimizer SQL",
        "POST",
        f"{API}/jobs",
        422,
        V,
        json={"config": {**TINY, "optimizer": SQL}},
    ),
    Bad(
        "grid field SQL",
        "POST",
        f"{API}/sweeps",
        422,
        V,
        json={"name": SQL, "base": TINY, "grid": {SQL: [1]}},
    ),
]
# PostgreSQL cannot store NUL in text or JSONB; both backends refuse it alike.
NUL = [
    Bad("NUL in a run name", "POST", f"{API}/runs", 422, V, json={"name": "a\x00b"}),
    Bad("NUL in a tag", "POST", f"{API}/runs", 422, V, json={"tags": {"t": "\x00"}}),
    Bad("NUL in a param key", "PATCH", RUN, 422, V, json={"params": {"a\x00": 1}}),
    Bad(
        "NUL deep in a param",
        "POST",
        f"{API}/runs",
        422,
        V,
        json={"params": {"a": [{"b": "\x00"}]}},
    ),
    Bad("NUL in a worker id", "POST", f"{API}/jobs/claim", 422, V, json={"worker_id": "\x00"}),
    Bad(
        "NUL in a lease token",
        "POST",
        f"{API}/jobs/1/release",
        422,
        V,
        json={"lease_token": "\x00"},
    ),
    Bad("NUL in a search", "GET", f"{API}/runs", 422, V, params={"q": "\x00"}),
    Bad("NUL in a tag filter", "GET", f"{API}/runs", 422, V, params={"tag": "a:\x00"}),
]
MATRIX = (
    NUL + MALFORMED + WRONG_TYPES + MISSING + HUGE + STEPS + KEYS + UNKNOWN + LIMIT_CASES + QUERY
)
# Through the real server: one of each kind, the body limits included.
LIVE = [
    MALFORMED[0],
    MALFORMED[3],
    WRONG_TYPES[1],
    WRONG_TYPES[4],
    MISSING[2],
    HUGE[0],
    HUGE[2],
    HUGE[5],
    HUGE[9],
    HUGE[13],
    STEPS[0],
    KEYS[1],
    KEYS[2],
    KEYS[7],
    UNKNOWN[0],
    UNKNOWN[12],
    LIMIT_CASES[0],
    LIMIT_CASES[2],
    LIMIT_CASES[3],
    QUERY[0],
    QUERY[1],
    QUERY[6],
]


def seed(http: TestClient | httpx.Client) -> None:
    """A run with points under two keys, a job and a sweep: id 1 of each."""
    assert http.post(f"{API}/runs", json={"name": "seed", "tags": {"team": "a"}}).status_code == 201
    batch = [
        {"key": key, "step": step, "value": 1.0 / (step + 1)}
        for key in ("loss", "accuracy")
        for step in range(5000)
    ]
    assert http.post(METRICS, json={"points": batch}).status_code == 200
    assert http.post(f"{API}/jobs", json={"config": TINY}).status_code == 201
    sweep = {"name": "s", "base": TINY, "grid": {"momentum": [0.0, 0.9]}}
    assert http.post(f"{API}/sweeps", json=sweep).status_code == 201


def run_matrix(http: TestClient | httpx.Client, engine: Engine, cases: list[Bad]) -> list[str]:
    problems = []
    before = snapshot(engine)
    for case in cases:
        response = case.send(http)
        check = assert_mlflow_error if is_mlflow_path(case.path) else assert_error_shape
        try:
            check(response, case.status, case.code)
        except AssertionError as exc:
            problems.append(f"{case.name}: {exc}")
        after = snapshot(engine)
        if after != before:
            changed = sorted(table for table in after if after[table] != before.get(table))
            problems.append(f"{case.name}: the database changed ({', '.join(changed)})")
            before = after
    return problems


@pytest.fixture
def limited(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings.model_copy(update=LIMITS))) as http:
        seed(http)
        yield http


def test_bad_input_gets_a_4xx_and_writes_nothing(limited: TestClient, engine: Engine) -> None:
    problems = run_matrix(limited, engine, MATRIX)
    assert not problems, "\n".join(problems)


def test_the_matrix_names_every_kind_of_bad_input() -> None:
    names = [case.name for case in MATRIX]
    assert len(names) == len(set(names)) and len(names) >= 100
    assert all(400 <= case.status < 500 for case in MATRIX)


def test_sql_looking_text_is_stored_and_searched_as_text(
    limited: TestClient, engine: Engine
) -> None:
    """Where such a string is valid data it is just that: stored verbatim, matched
    literally, and every table is still there with its rows."""
    before = snapshot(engine)
    created = limited.post(
        f"{API}/runs", json={"name": SQL, "project": SQL, "tags": {SQL: SQL}, "params": {SQL: SQL}}
    )
    assert created.status_code == 201, created.text
    run = created.json()
    assert (run["name"], run["project"], run["tags"], run["params"]) == (
        SQL,
        SQL,
        {SQL: SQL},
        {SQL: SQL},
    )
    for params in ({"q": SQL}, {"project": SQL}, {"tag": f"{SQL}:{SQL}"}):
        found = limited.get(f"{API}/runs", params=params)
        assert found.status_code == 200, (params, found.text)
        assert [item["id"] for item in found.json()["items"]] == [run["id"]], params
    for params in ({"q": "'"}, {"q": "%"}, {"q": "_"}, {"param": f"x:{SQL}"}, {"optimizer": SQL}):
        found = limited.get(f"{API}/runs", params=params)
        assert found.status_code == 200, (params, found.text)
        assert [item["id"] for item in found.json()["items"]] in ([], [run["id"]]), params
    after = snapshot(engine)
    assert len(after["runs"]) == len(before["runs"]) + 1
    unchanged = set(before) - {"runs", "events"}  # events: the new run's own
    assert {table: after[table] for table in unchanged} == {
        table: before[table] for table in unchanged
    }


def test_the_largest_step_is_stored_and_read_back(limited: TestClient) -> None:
    """The top of the step range (2**63 - 1) once overflowed a BIGINT beside the blocks."""
    top = 2**63 - 1
    batch = {"points": [{"key": "edge", "step": top, "value": 1.0}]}
    assert limited.post(METRICS, json=batch).status_code == 200
    assert limited.post(METRICS, json=batch).status_code == 200  # and again: an upsert
    history = limited.get(f"{METRICS}/edge").json()
    assert history["steps"] == [top]


def test_a_405_names_every_method_of_the_path(limited: TestClient) -> None:
    response = limited.request("OPTIONS", f"{API}/runs/1")
    assert_error_shape(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "GET, PATCH, DELETE"
    # /jobs/claim is the claim route's path, not a job id that fails to parse.
    claim = limited.get(f"{API}/jobs/claim")
    assert_error_shape(claim, 405, "method_not_allowed")
    assert claim.headers["allow"] == "POST"


def _locs(response: httpx.Response) -> list[list[Any]]:
    return [item["loc"] for item in response.json()["error"]["detail"]]


def _with_points(http: TestClient, params: dict[str, Any]) -> int:
    created = http.post(f"{API}/runs", json={"params": params})
    assert created.status_code == 201, created.text
    run_id: int = created.json()["id"]
    batch = {"points": [{"key": "loss", "step": step, "value": 1.0} for step in range(3)]}
    assert http.post(f"{API}/runs/{run_id}/metrics", json=batch).status_code == 200
    return run_id


def test_params_hold_int64_integers_and_name_a_wider_one(limited: TestClient) -> None:
    """10**400 in params overflowed a float where it was indexed (momentum): a 500."""
    edges = {"seed": 2**63 - 1, "momentum": -(2**63), "nested": {"a": [2**63 - 1]}}
    created = limited.post(f"{API}/runs", json={"params": edges})
    assert created.status_code == 201, created.text
    assert created.json()["params"] == edges
    assert created.json()["momentum"] == float(-(2**63))
    refused = limited.post(f"{API}/runs", content=HUGE_PARAM, headers=JSON)
    assert_error_shape(refused, 422, V)
    assert _locs(refused) == [["params", "momentum"]]
    patched = limited.patch(RUN, json={"params": {"seed": 2**63}})
    assert_error_shape(patched, 422, V)
    assert _locs(patched) == [["params", "seed"]]
    assert "64-bit" in patched.json()["error"]["message"]


def test_groups_by_seed_keep_seeds_at_the_top_of_int64_apart(limited: TestClient) -> None:
    """seed = 10**400 was stored, then `by=seed` overflowed a float (a 500); and seeds
    one apart near 2**63 are one float, so they were merged into one group."""
    huge_seed = b'{"params": {"seed": 1' + b"0" * 400 + b"}}"
    assert_error_shape(limited.post(f"{API}/runs", content=huge_seed, headers=JSON), 422, V)
    run_ids = [_with_points(limited, {"seed": seed}) for seed in (2**63 - 1, 2**63 - 2, 0)]
    groups = limited.get(
        f"{API}/compare/groups",
        params={"run_ids": ",".join(map(str, run_ids)), "key": "loss", "by": "seed"},
    )
    assert groups.status_code == 200, groups.text
    assert [g["value"] for g in groups.json()["groups"]] == [0, 2**63 - 2, 2**63 - 1]


def test_a_job_heartbeat_counts_steps_up_to_the_largest(limited: TestClient) -> None:
    claimed = limited.post(f"{API}/jobs/claim", json={"worker_id": "w"}).json()
    beat = f"{API}/jobs/{claimed['job']['id']}/heartbeat"
    lease = claimed["lease_token"]
    over = limited.post(
        beat,
        content=b'{"lease_token": "%s", "step": 99999999999999999999}' % (lease.encode()),
        headers=JSON,
    )
    assert_error_shape(over, 422, V)
    assert _locs(over) == [["step"]]
    top = 2**63 - 1
    assert limited.post(beat, json={"lease_token": lease, "step": top, "total": top}).is_success
    job = limited.get(f"{API}/jobs/{claimed['job']['id']}").json()
    assert (job["progress_step"], job["progress_total"]) == (top, top)


# Runs whose param `knob` holds each kind of JSON value, by name.
KNOBS: dict[str, Any] = {
    "int": 1,
    "float": 1.0,
    "true": True,
    "false": False,
    "zero": 0,
    "null": None,
    "text 1": "1",
    "text NaN": "NaN",
    "object": {"a": 1},
}


def test_param_filters_match_alike_on_both_backends(limited: TestClient) -> None:
    """A filter value is a JSON scalar compared as JSON (SQLite once matched `true` to 1,
    and never matched null), else text; objects, arrays and numbers params cannot hold
    are a 422 naming the rule (they were a 500 on one backend or the other)."""
    for name, value in KNOBS.items():
        created = limited.post(f"{API}/runs", json={"name": name, "params": {"knob": value}})
        assert created.status_code == 201, created.text

    def found(value: str) -> set[str]:
        response = limited.get(f"{API}/runs", params={"param": f"knob:{value}", "limit": 100})
        assert response.status_code == 200, response.text
        return {item["name"] for item in response.json()["items"]}

    assert found("1") == found("1.0") == {"int", "float"}
    assert found("true") == {"true"}
    assert found("false") == {"false"}
    assert found("0") == {"zero"}
    assert found("null") == {"null"}
    assert found('"1"') == {"text 1"}
    assert found("NaN") == found('"NaN"') == {"text NaN"}  # not standard JSON: text
    assert found("Infinity") == found("x") == set()
    for value in ('{"a":1}', "[1]", "1e999", "-1e999", str(10**400)):
        response = limited.get(f"{API}/runs", params={"param": f"knob:{value}"})
        assert_error_shape(response, 422, V)
        assert _locs(response) == [["query", "param"]], value


def test_a_long_optimizer_name_stays_in_params_alike_on_both_backends(
    limited: TestClient,
) -> None:
    """The indexed optimizer column holds 64 characters: PostgreSQL refused a longer name
    (a 500) where SQLite stored it. It is kept in params, the column left empty."""
    long_name = "o" * 65
    run_id = _with_points(limited, {"optimizer": long_name})
    run = limited.get(f"{API}/runs/{run_id}").json()
    assert (run["params"]["optimizer"], run["optimizer"]) == (long_name, None)
    fits = limited.patch(f"{API}/runs/{run_id}", json={"params": {"optimizer": "o" * 64}})
    assert fits.status_code == 200 and fits.json()["optimizer"] == "o" * 64
    again = limited.patch(f"{API}/runs/{run_id}", json={"params": {"optimizer": long_name}})
    assert again.status_code == 200 and again.json()["optimizer"] is None
    found = limited.get(f"{API}/runs", params={"param": f"optimizer:{long_name}"}).json()
    assert [item["id"] for item in found["items"]] == [run_id]
    groups = limited.get(
        f"{API}/compare/groups", params={"run_ids": str(run_id), "key": "loss", "by": "optimizer"}
    )
    assert [g["value"] for g in groups.json()["groups"]] == [long_name]


@pytest.mark.e2e
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_bad_input_through_the_real_server(database_url: str, tmp_path: Path) -> None:
    env = {
        "MOMENTUM_DATABASE_URL": database_url,
        "MOMENTUM_DATA_DIR": str(tmp_path),
        **{f"MOMENTUM_{name.upper()}": str(value) for name, value in LIMITS.items()},
    }
    engine = create_engine(database_url)
    try:
        with live_server(env) as url, httpx.Client(base_url=url, timeout=30) as http:
            seed(http)
            problems = run_matrix(http, engine, LIVE)
            # The server still answers on a fresh connection after the 413s closed theirs.
            assert http.get(f"{API}/runs/1").json()["last_step"] == 4999
    finally:
        engine.dispose()
    assert not problems, "\n".join(problems)


def test_a_chunked_body_over_the_limit_is_refused_as_it_streams(
    settings: Settings, engine: Engine
) -> None:
    """No Content-Length: the limit is counted on the bytes as they arrive."""
    with TestClient(create_app(settings.model_copy(update=LIMITS))) as http:
        seed(http)
        before = snapshot(engine)

        def chunks() -> Iterator[bytes]:
            yield b'{"points": ['
            for step in range(100_000):
                yield json.dumps({"key": "loss", "step": step, "value": 1.0}).encode() + b","
            yield b'{"key": "loss", "step": 0, "value": 1}]}'

        response = http.post(METRICS, content=chunks(), headers=JSON)
        assert_error_shape(response, 413, "body_too_large")
        assert snapshot(engine) == before


# MLflow's routes: MLflow's error shape, on both backends. Ids and page tokens are read
# as ASCII digits within int64 (`'²'.isdigit()` is true, `int('²')` a 500 once); an id
# no row can have is an unknown one, a token this server never gave out is invalid.
MLFLOW = "/api/2.0/mlflow"
MISSING_ID, INVALID = "RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"
DIGITS_5000, INT64_PAST = "9" * 5000, str(2**63)
HISTORY = f"{MLFLOW}/metrics/get-history"
BULK = f"{MLFLOW}/metrics/get-history-bulk-interval"
TOP_STEP = 2**63 - 1


def mlflow_get(name: str, path: str, status: int, code: str, **params: Any) -> Bad:
    return Bad(name, "GET", f"{MLFLOW}/{path}", status, code, params=params)


def mlflow_post(name: str, path: str, status: int, code: str, body: Any) -> Bad:
    return Bad(name, "POST", f"{MLFLOW}/{path}", status, code, json=body)


def _history(**params: Any) -> dict[str, Any]:
    return {"run_id": "1", "metric_key": "loss", **params}


def _bulk(**params: Any) -> dict[str, Any]:
    return {"run_ids": "1", "metric_key": "loss", **params}


MLFLOW_IDS = [
    mlflow_get("mlflow run id ²", "runs/get", 404, MISSING_ID, run_id="²"),
    mlflow_get("mlflow run id 5,000 digits", "runs/get", 404, MISSING_ID, run_id=DIGITS_5000),
    mlflow_get("mlflow run id 2**63", "runs/get", 404, MISSING_ID, run_uuid=INT64_PAST),
    mlflow_get("mlflow run id -1", "runs/get", 404, MISSING_ID, run_id="-1"),
    mlflow_get("mlflow experiment id ²", "experiments/get", 404, MISSING_ID, experiment_id="²"),
    mlflow_get(
        "mlflow experiment id 5,000 digits",
        "experiments/get",
        404,
        MISSING_ID,
        experiment_id=DIGITS_5000,
    ),
    mlflow_post("mlflow delete run ²", "runs/delete", 404, MISSING_ID, {"run_id": "²"}),
    mlflow_post(
        "mlflow delete run 5,000 digits", "runs/delete", 404, MISSING_ID, {"run_id": DIGITS_5000}
    ),
    mlflow_post(
        "mlflow search experiment ²", "runs/search", 404, MISSING_ID, {"experiment_ids": ["²"]}
    ),
    mlflow_post(
        "mlflow search experiment 2**63",
        "runs/search",
        404,
        MISSING_ID,
        {"experiment_ids": [INT64_PAST]},
    ),
    mlflow_get(
        "mlflow history of run ²", "metrics/get-history", 404, MISSING_ID, **_history(run_id="²")
    ),
    mlflow_get(
        "mlflow bulk of run ²",
        "metrics/get-history-bulk-interval",
        404,
        MISSING_ID,
        run_ids="²",
        metric_key="loss",
    ),
]
MLFLOW_TOKENS = [
    mlflow_post("mlflow runs page_token ²", "runs/search", 400, INVALID, {"page_token": "²"}),
    mlflow_post(
        "mlflow runs page_token 5,000 digits",
        "runs/search",
        400,
        INVALID,
        {"experiment_ids": ["0"], "page_token": DIGITS_5000},
    ),
    mlflow_post("mlflow runs page_token -1", "runs/search", 400, INVALID, {"page_token": "-1"}),
    mlflow_post(
        "mlflow experiments page_token 5,000 digits",
        "experiments/search",
        400,
        INVALID,
        {"page_token": DIGITS_5000},
    ),
    mlflow_get(
        "mlflow experiments page_token ²", "experiments/search", 400, INVALID, page_token="²"
    ),
    mlflow_get(
        "mlflow history page_token ²",
        "metrics/get-history",
        400,
        INVALID,
        **_history(page_token="²"),
    ),
    mlflow_get(
        "mlflow history page_token 5,000 digits",
        "metrics/get-history",
        400,
        INVALID,
        **_history(page_token=DIGITS_5000),
    ),
    mlflow_get(
        "mlflow history page_token 10**20",
        "metrics/get-history",
        400,
        INVALID,
        **_history(page_token="99999999999999999999"),
    ),
]
MLFLOW_STEPS = [
    mlflow_get(
        "mlflow bulk end_step 10**20",
        "metrics/get-history-bulk-interval",
        400,
        INVALID,
        **_bulk(start_step=0, end_step="99999999999999999999"),
    ),
    mlflow_get(
        "mlflow bulk start_step -2**63-1",
        "metrics/get-history-bulk-interval",
        400,
        INVALID,
        **_bulk(start_step=str(-(2**63) - 1), end_step=5),
    ),
    mlflow_get(
        "mlflow bulk end_step 5,000 digits",
        "metrics/get-history-bulk-interval",
        400,
        INVALID,
        **_bulk(start_step=0, end_step=DIGITS_5000),
    ),
    mlflow_post(
        "mlflow log-metric step 2**63",
        "runs/log-metric",
        400,
        INVALID,
        {"run_id": "1", "key": "loss", "value": 1, "timestamp": 1, "step": 2**63},
    ),
    mlflow_post(
        "mlflow log-metric step ²",
        "runs/log-metric",
        400,
        INVALID,
        {"run_id": "1", "key": "loss", "value": 1, "timestamp": 1, "step": "²"},
    ),
    # The edge series holds step 2**63-1 (see the test): a different value there would
    # move past it, where no step is.
    mlflow_post(
        "mlflow log-metric repeats the top step",
        "runs/log-metric",
        400,
        INVALID,
        {"run_id": "1", "key": "edge", "value": 2, "timestamp": 1, "step": TOP_STEP},
    ),
    mlflow_post(
        "mlflow log-batch repeats the top step, with a param",
        "runs/log-batch",
        400,
        INVALID,
        {
            "run_id": "1",
            "params": [{"key": "fresh", "value": "1"}],
            "metrics": [
                {"key": "other", "value": 1, "timestamp": 1, "step": TOP_STEP},
                {"key": "other", "value": 2, "timestamp": 1, "step": TOP_STEP},
            ],
        },
    ),
]
# PostgreSQL fails on NUL in a query's text; no name holds one, so it is an unknown name.
MLFLOW_TEXT = [
    mlflow_get(
        "mlflow experiment name NUL",
        "experiments/get-by-name",
        404,
        MISSING_ID,
        experiment_name="a\x00b",
    ),
    mlflow_post(
        "mlflow filter over the cap",
        "runs/search",
        400,
        INVALID,
        {"experiment_ids": ["0"], "filter": "attributes.status LIKE '" + "%" * 5000 + "'"},
    ),
    mlflow_get(
        "mlflow experiments filter over the cap",
        "experiments/search",
        400,
        INVALID,
        filter="name LIKE '" + "_" * 5000 + "'",
    ),
]
MLFLOW_MATRIX = MLFLOW_IDS + MLFLOW_TOKENS + MLFLOW_STEPS + MLFLOW_TEXT


def test_bad_mlflow_input_gets_a_4xx_and_writes_nothing(
    limited: TestClient, engine: Engine
) -> None:
    edge = {"run_id": "1", "key": "edge", "value": 1, "timestamp": 1, "step": TOP_STEP}
    assert limited.post(f"{MLFLOW}/runs/log-metric", json=edge).status_code == 200
    assert limited.post(f"{MLFLOW}/runs/log-metric", json=edge).status_code == 200  # a resend
    problems = run_matrix(limited, engine, MLFLOW_MATRIX)
    assert not problems, "\n".join(problems)
    names = [case.name for case in MLFLOW_MATRIX]
    assert len(names) == len(set(names))


def test_mlflow_reads_answer_alike_on_both_backends(limited: TestClient) -> None:
    """What SQLite answered all along, PostgreSQL now answers too (it was a 500 there)."""
    nul_key = limited.get(HISTORY, params=_history(metric_key="lo\x00ss"))
    assert nul_key.status_code == 200 and nul_key.json() == {"metrics": []}
    nul_bulk = limited.get(BULK, params=_bulk(metric_key="lo\x00ss"))
    assert nul_bulk.status_code == 200 and nul_bulk.json() == {"metrics": []}
    # The top of int64 is a step like any other; what the series holds up to it comes back.
    window = limited.get(BULK, params=_bulk(start_step=4998, end_step=TOP_STEP))
    assert [m["step"] for m in window.json()["metrics"]] == [4998, 4999]
    page = limited.get(HISTORY, params=_history(page_token=str(TOP_STEP)))
    assert page.status_code == 200 and page.json() == {"metrics": []}
    # An optimizer name longer than its indexed column is a param like any other.
    long_name = {"run_id": "1", "key": "optimizer", "value": "o" * 65}
    assert limited.post(f"{MLFLOW}/runs/log-parameter", json=long_name).status_code == 200
    assert limited.get(f"{API}/runs/1").json()["params"]["optimizer"] == "o" * 65
