"""The MLflow routes in process: error shape, the repeated-step rule, search filters, paging."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from service import Settings, create_app
from service.deps import app_state
from service.mlflow import experiments as mlflow_experiments
from tests.test_bad_input import assert_error_shape, assert_mlflow_error, snapshot

MLFLOW = "/api/2.0/mlflow"
AJAX = "/ajax-api/2.0/mlflow"


def _post(client: TestClient, path: str, body: dict[str, Any]) -> Any:
    response = client.post(f"{MLFLOW}/{path}", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def _get(client: TestClient, path: str, **params: Any) -> Any:
    response = client.get(f"{MLFLOW}/{path}", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def _run(client: TestClient, experiment_id: str = "0", **body: Any) -> str:
    created = _post(client, "runs/create", {"experiment_id": experiment_id, **body})
    return str(created["run"]["info"]["run_id"])


def _log(client: TestClient, run_id: str, **body: Any) -> None:
    _post(client, "runs/log-batch", {"run_id": run_id, **body})


def _history(client: TestClient, run_id: str, key: str) -> list[tuple[int, Any, int]]:
    metrics = _get(client, "metrics/get-history", run_id=run_id, metric_key=key)["metrics"]
    return [(m["step"], m["value"], m["timestamp"]) for m in metrics]


def test_errors_have_mlflows_shape_on_mlflow_routes_only(client: TestClient) -> None:
    missing = client.get(f"{MLFLOW}/runs/get", params={"run_id": "999"})
    assert missing.status_code == 404
    assert missing.json() == {
        "error_code": "RESOURCE_DOES_NOT_EXIST",
        "message": "Run with id=999 not found",
    }
    no_name = client.get(f"{MLFLOW}/experiments/get-by-name", params={"experiment_name": "nope"})
    assert no_name.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    malformed = client.post(f"{MLFLOW}/experiments/create", json={"nam": "x"})
    assert malformed.status_code == 400
    assert malformed.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "name" in malformed.json()["message"]
    unknown = client.post(f"{MLFLOW}/registered-models/create", json={})
    assert unknown.status_code == 404 and unknown.json()["error_code"] == "ENDPOINT_NOT_FOUND"
    bad_filter = client.post(f"{MLFLOW}/runs/search", json={"filter": "params.x ~ 1"})
    assert bad_filter.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    # /api/v1 keeps the contract's own shape.
    native = client.get("/api/v1/runs/999")
    assert native.status_code == 404 and native.json()["error"]["code"] == "not_found"


def test_experiment_zero_is_the_default_project_and_names_are_unique(client: TestClient) -> None:
    default = _get(client, "experiments/get", experiment_id="0")["experiment"]
    assert default["name"] == "Default" and default["lifecycle_stage"] == "active"
    assert (
        _get(client, "experiments/get-by-name", experiment_name="Default")["experiment"] == default
    )
    created = _post(client, "experiments/create", {"name": "digits"})["experiment_id"]
    assert created.isdigit() and created != "0"
    again = client.post(f"{MLFLOW}/experiments/create", json={"name": "digits"})
    assert again.json()["error_code"] == "RESOURCE_ALREADY_EXISTS"
    run_id = _run(client, created, run_name="r")
    assert client.get(f"/api/v1/runs/{run_id}").json()["project"] == "digits"
    in_default = _run(client)
    assert client.get(f"/api/v1/runs/{in_default}").json()["project"] == "default"
    names = [e["name"] for e in _post(client, "experiments/search", {})["experiments"]]
    assert names == ["digits", "Default"]  # creation_time DESC, as MLflow orders them
    like = _post(client, "experiments/search", {"filter": "name LIKE 'dig%'"})
    assert [e["name"] for e in like["experiments"]] == ["digits"]


def test_a_repeated_step_never_loses_a_value(client: TestClient) -> None:
    run_id = _run(client)
    for value, timestamp in ((1.0, 1000), (2.0, 2000), (3.0, 3000)):
        # mlflow.log_metric without a step sends step 0 every time.
        metric = {"key": "acc", "value": value, "timestamp": timestamp, "step": 0}
        _post(client, "runs/log-metric", {"run_id": run_id, **metric})
    assert _history(client, run_id, "acc") == [(0, 1.0, 1000), (1, 2.0, 2000), (2, 3.0, 3000)]
    # A resent value (same step, value and timestamp: a retried request) changes nothing.
    resent = {"run_id": run_id, "key": "acc", "value": 1.0, "timestamp": 1000, "step": 0}
    _post(client, "runs/log-metric", resent)
    assert len(_history(client, run_id, "acc")) == 3
    # Within one batch too; a moved value goes after the series' highest step.
    batch = [
        {"key": "loss", "value": 5.0, "timestamp": 10, "step": 7},
        {"key": "loss", "value": 4.0, "timestamp": 11, "step": 7},
        {"key": "loss", "value": 3.0, "timestamp": 12, "step": 9},
    ]
    _log(client, run_id, metrics=batch)
    assert _history(client, run_id, "loss") == [(7, 5.0, 10), (9, 3.0, 12), (10, 4.0, 11)]
    tags = {
        t["key"]: t["value"] for t in _get(client, "runs/get", run_id=run_id)["run"]["data"]["tags"]
    }
    assert tags["momentum.moved_steps.acc"] == "2"
    assert tags["momentum.moved_steps.loss"] == "1"


def test_params_fill_the_indexed_columns_and_cannot_change(client: TestClient) -> None:
    run_id = _run(client)
    params = [
        {"key": "momentum", "value": "0.9"},
        {"key": "lr", "value": "1e-3"},
        {"key": "optimizer", "value": "nesterov"},
    ]
    _log(client, run_id, params=params)
    native = client.get(f"/api/v1/runs/{run_id}").json()
    assert (native["momentum"], native["lr"], native["optimizer"]) == (0.9, 0.001, "nesterov")
    assert native["params"]["momentum"] == 0.9  # a number, as a native run's
    back = _get(client, "runs/get", run_id=run_id)["run"]["data"]["params"]
    assert back == sorted(params, key=lambda p: p["key"])  # the exact text logged
    _post(client, "runs/log-parameter", {"run_id": run_id, "key": "momentum", "value": "0.9"})
    changed = client.post(
        f"{MLFLOW}/runs/log-parameter", json={"run_id": run_id, "key": "momentum", "value": "0.5"}
    )
    assert changed.status_code == 400
    assert changed.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert client.get(f"/api/v1/runs/{run_id}").json()["momentum"] == 0.9


@pytest.fixture
def three_runs(client: TestClient) -> dict[str, str]:
    runs = {}
    for momentum, loss, team, status in (
        ("0.0", 0.9, "vision", "FINISHED"),
        ("0.5", 0.4, "vision-b", "RUNNING"),
        ("0.9", 0.1, "speech", "FAILED"),
    ):
        run_id = _run(client, run_name=f"mu-{momentum}")
        _log(
            client,
            run_id,
            params=[{"key": "momentum", "value": momentum}],
            tags=[{"key": "team", "value": team}],
            metrics=[{"key": "loss", "value": loss, "timestamp": 1, "step": 3}],
        )
        _post(client, "runs/update", {"run_id": run_id, "status": status, "end_time": 5})
        runs[momentum] = run_id
    return runs


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("params.momentum = '0.5'", ["0.5"]),
        ("params.momentum != '0.5'", ["0.0", "0.9"]),
        ("params.momentum > '0.4'", ["0.5", "0.9"]),
        ("params.momentum < '0.5'", ["0.0"]),
        ("metrics.loss < 0.5", ["0.5", "0.9"]),
        ("metrics.loss >= 0.4 AND tags.team LIKE 'vision%'", ["0.0", "0.5"]),
        ("tags.team ILIKE 'VISION'", ["0.0"]),
        ("attributes.status = 'FINISHED'", ["0.0"]),
        ("status != 'RUNNING'", ["0.0", "0.9"]),
        ("params.momentum IN ('0.0', '0.9')", ["0.0", "0.9"]),
        ("attributes.run_name = 'mu-0.9'", ["0.9"]),
        ("params.missing = 'x'", []),
        ("", ["0.0", "0.5", "0.9"]),
    ],
)
def test_search_filters(
    client: TestClient, three_runs: dict[str, str], filter_string: str, expected: list[str]
) -> None:
    body = {"experiment_ids": ["0"], "filter": filter_string, "order_by": ["params.momentum"]}
    found = _post(client, "runs/search", body)["runs"]
    by_id = {run_id: momentum for momentum, run_id in three_runs.items()}
    assert [by_id[run["info"]["run_id"]] for run in found] == expected


def test_search_orders_and_pages(client: TestClient, three_runs: dict[str, str]) -> None:
    body: dict[str, Any] = {"experiment_ids": ["0"], "order_by": ["metrics.loss DESC"]}
    found = _post(client, "runs/search", {**body, "max_results": 2})
    assert [r["info"]["run_id"] for r in found["runs"]] == [three_runs["0.0"], three_runs["0.5"]]
    rest = _post(
        client, "runs/search", {**body, "max_results": 2, "page_token": found["next_page_token"]}
    )
    assert [r["info"]["run_id"] for r in rest["runs"]] == [three_runs["0.9"]]
    assert "next_page_token" not in rest
    statuses = [r["info"]["status"] for r in _post(client, "runs/search", body)["runs"]]
    assert statuses == ["FINISHED", "RUNNING", "FAILED"]


def test_history_pages_and_non_finite_values(client: TestClient) -> None:
    run_id = _run(client)
    values: list[Any] = [float(step) for step in range(25)]
    values[3], values[4], values[5] = "NaN", "Infinity", "-Infinity"
    metrics = [
        {"key": "loss", "value": v, "timestamp": 100 + s, "step": s} for s, v in enumerate(values)
    ]
    _log(client, run_id, metrics=metrics)
    seen, token = [], None
    while True:
        paging = {"max_results": 10, **({"page_token": token} if token else {})}
        page = _get(client, "metrics/get-history", run_id=run_id, metric_key="loss", **paging)
        seen += page["metrics"]
        token = page.get("next_page_token")
        if token is None:
            break
    assert [m["step"] for m in seen] == list(range(25))
    assert [m["value"] for m in seen] == values
    assert all(m["timestamp"] == 100 + m["step"] for m in seen)


def test_bulk_interval_samples_each_run_keeping_its_ends(client: TestClient) -> None:
    run_ids = [_run(client), _run(client)]
    for run_id in run_ids:
        metrics = [{"key": "loss", "value": s, "timestamp": 1, "step": s} for s in range(100)]
        _log(client, run_id, metrics=metrics)
    params = {"run_ids": run_ids, "metric_key": "loss", "max_results": 10}
    found = _get(client, "metrics/get-history-bulk-interval", **params)["metrics"]
    for run_id in run_ids:
        steps = [m["step"] for m in found if m["run_id"] == run_id]
        assert len(steps) == 10 and steps[0] == 0 and steps[-1] == 99
        assert steps == sorted(steps)
    window = _get(client, "metrics/get-history-bulk-interval", **params, start_step=10, end_step=12)
    assert [m["step"] for m in window["metrics"]] == [10, 11, 12, 10, 11, 12]
    ajax = client.get("/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval", params=params)
    assert ajax.json()["metrics"] == found


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_every_kind_of_failure_comes_in_mlflows_shape_on_its_routes(
    settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not only the routes' own errors: the body limits' 413 (service/limits.py), the
    router's 404 and 405, the database's 503 and an unexpected 500, on both prefixes;
    /api/v1 keeps the contract's shape for the same failures."""
    limits = {"max_body_bytes": 4096, "pool_size": 1, "pool_max_overflow": 0, "pool_timeout_s": 0.2}
    with TestClient(create_app(settings.model_copy(update=limits))) as http:
        run_id = _run(http)
        before = snapshot(engine)
        metrics = [{"key": "loss", "value": 1.0, "timestamp": 1, "step": s} for s in range(200)]
        big = {"run_id": run_id, "metrics": metrics}
        for prefix in (MLFLOW, AJAX):
            too_large = http.post(f"{prefix}/runs/log-batch", json=big)
            assert "4096 bytes" in assert_mlflow_error(too_large, 413, "INVALID_PARAMETER_VALUE")

            def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
                raw = json.dumps(big).encode()
                yield from (raw[i : i + 1000] for i in range(0, len(raw), 1000))

            streamed = http.post(
                f"{prefix}/runs/log-batch",
                content=chunks(),
                headers={"content-type": "application/json"},
            )
            assert_mlflow_error(streamed, 413, "INVALID_PARAMETER_VALUE")
            wrong_method = http.get(f"{prefix}/runs/log-batch")
            assert_mlflow_error(wrong_method, 405, "BAD_REQUEST")
            assert wrong_method.headers["allow"] == "POST"
            assert_mlflow_error(http.get(f"{prefix}/no-such-route"), 404, "ENDPOINT_NOT_FOUND")
            missing_run = http.get(f"{prefix}/runs/get", params={"run_id": "999"})
            assert_mlflow_error(missing_run, 404, "RESOURCE_DOES_NOT_EXIST")
            with app_state(http.app).engine.connect():
                busy = http.get(f"{prefix}/runs/get", params={"run_id": run_id})
            assert_mlflow_error(busy, 503, "TEMPORARILY_UNAVAILABLE")
            assert busy.headers["retry-after"] == "1"
        assert snapshot(engine) == before
        # The same failures under /api/v1: the contract's shape.
        native = {"points": [{"key": "loss", "step": s, "value": 1.0} for s in range(200)]}
        too_large = http.post(f"/api/v1/runs/{run_id}/metrics", json=native)
        assert_error_shape(too_large, 413, "body_too_large")
        assert_error_shape(http.get("/api/v1/no-such-route"), 404, "not_found")
        assert_error_shape(http.put(f"/api/v1/runs/{run_id}"), 405, "method_not_allowed")
        with app_state(http.app).engine.connect():
            assert_error_shape(http.get("/api/v1/runs"), 503, "database_unavailable")

    def broken(*_args: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(mlflow_experiments, "load_experiment", broken)
    with TestClient(create_app(settings), raise_server_exceptions=False) as http:
        failed = http.get(f"{MLFLOW}/experiments/get", params={"experiment_id": "0"})
        assert "not applied" in assert_mlflow_error(failed, 500, "INTERNAL_ERROR")


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_numbers_are_read_as_protobufs_json_has_them(client: TestClient) -> None:
    """int64 fields take a number or its digits (other MLflow clients send those);
    booleans, fractions and text are refused, never truncated or read as 0 or 1."""
    run_id = _run(client, start_time="1700000000000")
    run = _get(client, "runs/get", run_id=run_id)["run"]
    assert run["info"]["start_time"] == 1_700_000_000_000
    good = {"key": "loss", "value": "0.5", "timestamp": "1000", "step": "3"}
    _log(client, run_id, metrics=[good, {"key": "acc", "value": 1, "timestamp": 2.0, "step": 0}])
    assert _history(client, run_id, "loss") == [(3, 0.5, 1000)]
    assert _history(client, run_id, "acc") == [(0, 1.0, 2)]
    for bad in (
        {"step": 1.5},
        {"step": True},
        {"step": "1.0"},
        {"timestamp": False},
        {"value": True},
        {"value": None},
        {"value": [1]},
    ):
        metric = {"key": "loss", "value": 0.5, "timestamp": 1000, "step": 4, **bad}
        refused = client.post(
            f"{MLFLOW}/runs/log-batch", json={"run_id": run_id, "metrics": [metric]}
        )
        assert_mlflow_error(refused, 400, "INVALID_PARAMETER_VALUE")
    for bad_body in ({"start_time": False}, {"start_time": 1.5}, {"start_time": -1}):
        refused = client.post(f"{MLFLOW}/runs/create", json={"experiment_id": "0", **bad_body})
        assert_mlflow_error(refused, 400, "INVALID_PARAMETER_VALUE")
    assert _history(client, run_id, "loss") == [(3, 0.5, 1000)]
