"""The worker token's rights on runs (SECURITY.md): a job's run only while its job is
running, any other run only until it is finished, params frozen once there are points.
The full token keeps every right. Each route x state, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from fastapi.testclient import TestClient

from tests.factories import points
from tests.test_auth import TOKENS, guarded  # noqa: F401  (the fixture)

API = "/api/v1"
MLFLOW = "/api/2.0/mlflow"
FULL = {"Authorization": f"Bearer {TOKENS['token']}"}
WORKER = {"Authorization": f"Bearer {TOKENS['worker_token']}"}
JOB_CONFIG = {"dataset": "ravine", "model": "linear", "steps": 5, "eval_every": 5}


def _ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json() if response.content else {}


def sdk_run(api: TestClient, status: str) -> int:
    created = api.post(
        f"{API}/runs", json={"name": f"sdk-{status}", "status": status}, headers=FULL
    )
    return int(_ok(created, 201)["id"])


def _claim(api: TestClient) -> dict[str, Any]:
    body = {"worker_id": "w1", "device": "cpu", "frameworks": ["torch"]}
    return _ok(api.post(f"{API}/jobs/claim", json=body, headers=WORKER))


def _end(api: TestClient, job_id: int, lease: str, path: str, **body: Any) -> None:
    sent = {"lease_token": lease, **body}
    _ok(api.post(f"{API}/jobs/{job_id}/{path}", json=sent, headers=WORKER))


def job_run(api: TestClient, state: str) -> int:
    """The run of a job brought to `state`; `retried` is running again, attempt 2."""
    job = _ok(api.post(f"{API}/jobs", json={"config": JOB_CONFIG}, headers=FULL), 201)
    if state == "queued":
        return int(job["run_id"])
    if state == "cancelled":
        _ok(api.post(f"{API}/jobs/{job['id']}/cancel", headers=FULL))
        return int(job["run_id"])
    lease = _claim(api)["lease_token"]  # the only queued job: the one just submitted
    if state == "succeeded":
        _end(api, job["id"], lease, "complete")
    elif state in ("failed", "retried"):
        _end(api, job["id"], lease, "fail", error="boom")
    if state == "retried":
        _ok(api.post(f"{API}/jobs/{job['id']}/retry", headers=FULL))
        assert _claim(api)["job"]["attempts"] == 2
    return int(job["run_id"])


# (name, run factory, may the worker token write it?). A queued job stays queued, so it
# comes last: `job_run` claims the one job it just submitted.
STATES: list[tuple[str, Callable[[TestClient], int], bool]] = [
    ("sdk queued", lambda api: sdk_run(api, "queued"), True),
    ("sdk running", lambda api: sdk_run(api, "running"), True),
    ("sdk succeeded", lambda api: sdk_run(api, "succeeded"), False),
    ("sdk failed", lambda api: sdk_run(api, "failed"), False),
    ("sdk cancelled", lambda api: sdk_run(api, "cancelled"), False),
    ("job running", lambda api: job_run(api, "running"), True),
    ("job retried, running again", lambda api: job_run(api, "retried"), True),
    ("job succeeded", lambda api: job_run(api, "succeeded"), False),
    ("job failed", lambda api: job_run(api, "failed"), False),
    ("job cancelled", lambda api: job_run(api, "cancelled"), False),
    ("job queued", lambda api: job_run(api, "queued"), False),
]

# (route, a write to run `run_id` that changes neither its status nor its params)
WRITES: list[tuple[str, Callable[[int], tuple[str, str, dict[str, Any] | None]]]] = [
    ("v1 ingest", lambda r: ("POST", f"{API}/runs/{r}/metrics", {"points": points("x", range(2))})),
    ("v1 PATCH", lambda r: ("PATCH", f"{API}/runs/{r}", {"name": "renamed", "tags": {"a": "b"}})),
    ("v1 heartbeat", lambda r: ("POST", f"{API}/runs/{r}/heartbeat", None)),
    (
        "mlflow log-metric",
        lambda r: ("POST", f"{MLFLOW}/runs/log-metric", _metric(r)),
    ),
    (
        "mlflow log-batch",
        lambda r: ("POST", f"{MLFLOW}/runs/log-batch", {"run_id": str(r), "metrics": [_metric(r)]}),
    ),
    (
        "mlflow update",
        lambda r: ("POST", f"{MLFLOW}/runs/update", {"run_id": str(r), "run_name": "n"}),
    ),
    (
        "mlflow set-tag",
        lambda r: ("POST", f"{MLFLOW}/runs/set-tag", {"run_id": str(r), "key": "k", "value": "v"}),
    ),
]


def _metric(run_id: int) -> dict[str, Any]:
    return {"run_id": str(run_id), "key": "m", "value": 1.5, "timestamp": 1_000, "step": 3}


def _call(api: TestClient, write: tuple[str, str, dict[str, Any] | None], headers: Any) -> Any:
    method, path, body = write
    return api.request(method, path, json=body, headers=headers)


def _snapshot(api: TestClient, run_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
    run = _ok(api.get(f"{API}/runs/{run_id}", headers=FULL))
    return run, _ok(api.get(f"{API}/runs/{run_id}/metrics", headers=FULL))


def assert_refused(response: httpx.Response, route: str, run_id: int) -> None:
    assert response.status_code == 403, (route, response.text)
    if route.startswith("mlflow"):
        body = response.json()
        assert body["error_code"] == "PERMISSION_DENIED", body
        message = body["message"]
    else:
        error = response.json()["error"]
        assert error["code"] == "run_closed", error
        message = error["message"]
    # Says which run, why, and which token can.
    assert f"run {run_id}" in message and "MOMENTUM_TOKEN" in message, message


def test_worker_token_writes_a_run_only_while_its_job_runs_or_it_is_unfinished(
    guarded: TestClient,  # noqa: F811
) -> None:
    for state, make, writable in STATES:
        run_id = make(guarded)
        before = _snapshot(guarded, run_id)
        for route, write in WRITES:
            response = _call(guarded, write(run_id), WORKER)
            if writable:
                assert response.status_code == 200, (state, route, response.text)
            else:
                assert_refused(response, f"{route}", run_id)
        if not writable:
            assert _snapshot(guarded, run_id) == before, f"{state}: a refused write changed it"
            for route, write in WRITES:  # the full token keeps every right
                response = _call(guarded, write(run_id), FULL)
                assert response.status_code == 200, (state, route, response.text)


def test_refusal_messages_name_the_job_and_its_status(guarded: TestClient) -> None:  # noqa: F811
    run_id = job_run(guarded, "succeeded")
    batch = {"points": points("loss", range(1))}
    response = guarded.post(f"{API}/runs/{run_id}/metrics", json=batch, headers=WORKER)
    message = response.json()["error"]["message"]
    assert "job 1, which is succeeded" in message and "only while the job is running" in message
    run_id = sdk_run(guarded, "failed")
    response = guarded.patch(f"{API}/runs/{run_id}", json={"name": "x"}, headers=WORKER)
    assert (
        f"run {run_id} is failed: a finished run is read-only"
        in response.json()["error"]["message"]
    )


def test_the_worker_token_closes_an_unfinished_run_once(guarded: TestClient) -> None:  # noqa: F811
    """The SDK's own close: points, then the final status; after it, nothing more."""
    run_id = sdk_run(guarded, "running")
    batch = {"points": points("loss", range(3))}
    _ok(guarded.post(f"{API}/runs/{run_id}/metrics", json=batch, headers=WORKER))
    _ok(guarded.patch(f"{API}/runs/{run_id}", json={"status": "succeeded"}, headers=WORKER))
    again = guarded.patch(f"{API}/runs/{run_id}", json={"status": "running"}, headers=WORKER)
    assert_refused(again, "v1 PATCH", run_id)
    assert _ok(guarded.get(f"{API}/runs/{run_id}", headers=FULL))["status"] == "succeeded"


def _patch_params(api: TestClient, run_id: int, params: dict[str, Any], headers: Any) -> Any:
    return api.patch(f"{API}/runs/{run_id}", json={"params": params}, headers=headers)


def _log_param(api: TestClient, run_id: int, key: str, value: str, headers: Any) -> Any:
    body = {"run_id": str(run_id), "key": key, "value": value}
    return api.post(f"{MLFLOW}/runs/log-parameter", json=body, headers=headers)


def test_params_are_frozen_for_the_worker_token_once_the_run_has_points(
    guarded: TestClient,  # noqa: F811
) -> None:
    for state in ("sdk running", "job running"):
        make = next(factory for name, factory, _ in STATES if name == state)
        run_id = make(guarded)
        params = _ok(guarded.get(f"{API}/runs/{run_id}", headers=FULL))["params"]
        # Without points: params may change, on /api/v1 and through MLflow.
        changed = {**params, "momentum": 0.5}
        _ok(_patch_params(guarded, run_id, changed, WORKER))
        _ok(_log_param(guarded, run_id, "extra", "1", WORKER))
        frozen = {**changed, "extra": 1}
        batch = {"points": points("loss", range(2))}
        _ok(guarded.post(f"{API}/runs/{run_id}/metrics", json=batch, headers=WORKER))
        # With points: the same params again are no change; any other value is refused.
        _ok(_patch_params(guarded, run_id, frozen, WORKER))
        _ok(_log_param(guarded, run_id, "extra", "1", WORKER))
        refused = _patch_params(guarded, run_id, {**frozen, "momentum": 0.99}, WORKER)
        assert refused.status_code == 403, (state, refused.text)
        error = refused.json()["error"]
        assert error["code"] == "params_frozen" and "MOMENTUM_TOKEN" in error["message"]
        new_key = _log_param(guarded, run_id, "late", "2", WORKER)
        assert new_key.status_code == 403 and new_key.json()["error_code"] == "PERMISSION_DENIED"
        batch_with_param = {
            "run_id": str(run_id),
            "metrics": [_metric(run_id)],
            "params": [{"key": "late", "value": "2"}],
        }
        refused = guarded.post(f"{MLFLOW}/runs/log-batch", json=batch_with_param, headers=WORKER)
        assert refused.status_code == 403, refused.text
        stored = _ok(guarded.get(f"{API}/runs/{run_id}", headers=FULL))
        assert stored["params"] == frozen and "m" not in stored["latest"], "half-written"
        # The full token may.
        _ok(_patch_params(guarded, run_id, {**frozen, "momentum": 0.99}, FULL))
        _ok(_log_param(guarded, run_id, "late", "2", FULL))


def test_mlflow_log_batch_with_params_and_first_metrics_is_one_write(
    guarded: TestClient,  # noqa: F811
) -> None:
    """An MLflow client's first batch often carries params and metrics together: the run
    has no points before it, so the worker token may."""
    run_id = sdk_run(guarded, "running")
    body = {
        "run_id": str(run_id),
        "metrics": [_metric(run_id)],
        "params": [{"key": "lr", "value": "0.1"}],
    }
    _ok(guarded.post(f"{MLFLOW}/runs/log-batch", json=body, headers=WORKER))
    assert _ok(guarded.get(f"{API}/runs/{run_id}", headers=FULL))["params"] == {"lr": 0.1}
