"""Limits from settings (MOMENTUM_*), each enforced with a clear 4xx; and a slow or stalled
client holds neither a pool connection nor SQLite's write lock.

Body size, points per batch, key length and grid size are in the bad-input matrix
(tests/test_bad_input.py); page size and the stalled-body timeout are here.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import create_engine

from service import Settings, create_app
from service.deps import app_state
from tests.support import ServerProcess
from tests.test_bad_input import assert_error_shape, snapshot
from tests.test_mlflow_api import assert_mlflow_error

API = "/api/v1"
LISTS = [f"{API}/runs", f"{API}/jobs", f"{API}/sweeps", f"{API}/workers"]
TINY = {"dataset": "ravine", "model": "linear", "steps": 5, "eval_every": 5}


def test_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "MAX_BODY_BYTES": "4096",
        "MAX_POINTS_PER_BATCH": "20000",
        "MAX_PAGE_SIZE": "100",
        "MAX_GRID_SIZE": "8",
        "BODY_TIMEOUT_S": "2.5",
        "MAX_SMALL_BODY_BYTES": "2048",
        "BODY_DEADLINE_S": "7.5",
    }.items():
        monkeypatch.setenv(f"MOMENTUM_{name}", value)
    settings = Settings()
    assert (settings.max_body_bytes, settings.max_points_per_batch) == (4096, 20_000)
    assert (settings.max_page_size, settings.max_grid_size, settings.body_timeout_s) == (
        100,
        8,
        2.5,
    )
    assert (settings.max_small_body_bytes, settings.body_deadline_s) == (2048, 7.5)
    monkeypatch.undo()
    defaults = Settings()
    assert defaults.max_page_size == 1000 and defaults.body_timeout_s == 30
    assert defaults.max_body_bytes == 32 << 20 and defaults.max_small_body_bytes == 1 << 20
    assert defaults.body_deadline_s == 60
    assert defaults.max_points_per_batch >= 10_000  # the contract's floor
    with pytest.raises(ValidationError):
        Settings(max_page_size=1001)  # the contract's ceiling
    with pytest.raises(ValidationError):
        Settings(max_points_per_batch=9_999)
    with pytest.raises(ValidationError):
        Settings(body_timeout_s=0)
    with pytest.raises(ValidationError):
        Settings(body_deadline_s=0)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_page_size_over_the_limit_is_a_422_on_every_list(settings: Settings) -> None:
    with TestClient(create_app(settings.model_copy(update={"max_page_size": 10}))) as http:
        for path in LISTS:
            assert_error_shape(http.get(path, params={"limit": 11}), 422, "validation_error")
            error = http.get(path, params={"limit": 11}).json()["error"]
            assert error["detail"][0]["loc"] == ["query", "limit"]
            assert "page size of 10" in error["message"]
            assert http.get(path, params={"limit": 10}).json()["limit"] == 10
            assert http.get(path).json()["limit"] == 10  # the default, 50, capped
    with TestClient(create_app(settings)) as http:
        for path in LISTS:
            assert http.get(path).json()["limit"] == 50
            assert http.get(path, params={"limit": 1000}).json()["limit"] == 1000
            assert_error_shape(http.get(path, params={"limit": 1001}), 422, "validation_error")


def _url_parts(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname and parts.port
    return parts.hostname, parts.port


def stalled(url: str, method: str, path: str, body: dict[str, object]) -> socket.socket:
    """A client that sends the headers and half the body, then nothing more."""
    raw = json.dumps(body).encode()
    host, port = _url_parts(url)
    sock = socket.create_connection((host, port), timeout=30)
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(raw)}\r\n\r\n"
    )
    sock.sendall(head.encode() + raw[: len(raw) // 2])
    return sock


def read_response(sock: socket.socket) -> tuple[int, dict[str, object]]:
    """Read until the server closes the connection; the status and the JSON body."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), json.loads(body)


def batch(key: str, steps: range) -> dict[str, object]:
    return {"points": [{"key": key, "step": step, "value": 0.5} for step in steps]}


@contextmanager
def server(database_url: str, tmp_path: Path, **env: str) -> Iterator[str]:
    base = {
        "MOMENTUM_DATABASE_URL": database_url,
        "MOMENTUM_DATA_DIR": str(tmp_path),
        # One connection and a one-second wait for it or for SQLite's write lock: a
        # request that held either while its body streams would turn others into 503s.
        "MOMENTUM_POOL_SIZE": "1",
        "MOMENTUM_POOL_MAX_OVERFLOW": "0",
        "MOMENTUM_POOL_TIMEOUT_S": "1",
        "MOMENTUM_SQLITE_BUSY_TIMEOUT_MS": "1000",
        # These tests compare the database before and after rejected writes; live
        # diagnosis would write an accepted run's findings in between, whenever it runs.
        "MOMENTUM_DIAGNOSIS_INTERVAL_S": "0",
    }
    with ServerProcess({**base, **env}) as process:
        yield process.start()


STALLED_WRITES = [
    ("POST", f"{API}/runs/1/metrics", batch("loss", range(1000, 3000))),
    ("POST", f"{API}/runs", {"name": "stalled", "params": {"x": "y" * 5000}}),
    ("PATCH", f"{API}/runs/1", {"name": "stalled", "params": {"x": "y" * 5000}}),
    ("POST", f"{API}/jobs", {"config": TINY, "name": "y" * 200}),
    ("POST", f"{API}/sweeps", {"name": "s", "base": TINY, "grid": {"seed": list(range(8))}}),
    ("POST", f"{API}/jobs/claim", {"worker_id": "w" * 200, "device": "cpu"}),
]

MLFLOW_STALLED_WRITES = [
    (
        "POST",
        "/api/2.0/mlflow/runs/log-batch",
        {"run_id": "1", "params": [{"key": "x", "value": "y" * 5000}]},
    ),
    ("POST", "/api/2.0/mlflow/runs/create", {"experiment_id": "0", "run_name": "y" * 5000}),
    ("POST", "/ajax-api/2.0/mlflow/runs/set-tag", {"run_id": "1", "key": "t", "value": "y" * 5000}),
]


@pytest.mark.e2e
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_stalled_bodies_hold_no_connection_nor_the_write_lock(
    database_url: str, tmp_path: Path
) -> None:
    """Every write route with a JSON body (MLflow's too) reads all of it before opening a
    transaction: with clients stalled halfway through a body on each of them, the one
    pooled connection and SQLite's write lock stay free for everyone else."""
    with server(database_url, tmp_path) as url, httpx.Client(base_url=url, timeout=20) as http:
        assert http.post(f"{API}/runs", json={"name": "r"}).status_code == 201
        assert http.post(f"{API}/runs/1/metrics", json=batch("loss", range(10))).status_code == 200
        writes = [*STALLED_WRITES, *MLFLOW_STALLED_WRITES]
        sockets = [stalled(url, method, path, body) for method, path, body in writes]
        try:
            time.sleep(0.5)  # the server has read their headers and awaits the rest
            for round_ in range(3):
                steps = range(10 + 10 * round_, 20 + 10 * round_)
                logged = http.post(f"{API}/runs/1/metrics", json=batch("loss", steps))
                assert logged.status_code == 200, logged.text
                assert http.post(f"{API}/runs", json={"name": "other"}).status_code == 201
                patched = http.patch(f"{API}/runs/1", json={"tags": {"round": str(round_)}})
                assert patched.status_code == 200, patched.text
                assert http.post(f"{API}/jobs", json={"config": TINY}).status_code == 201
                history = http.get(f"{API}/runs/1/metrics/loss")
                assert history.status_code == 200 and history.json()["total"] == 20 + 10 * round_
                assert http.get(f"{API}/runs").json()["total"] == 3 + 2 * round_  # a job has a run
            for sock in sockets:  # still stalled, still unanswered
                sock.setblocking(False)
                with pytest.raises(BlockingIOError):
                    sock.recv(1)
        finally:
            for sock in sockets:
                sock.close()
        # What the stalled clients sent never arrived whole, so none of it was stored.
        assert http.get(f"{API}/runs/1").json()["name"] == "r"
        assert http.get(f"{API}/runs/1/metrics/loss").json()["total"] == 40
        assert http.get(f"{API}/sweeps").json()["total"] == 0


@pytest.mark.e2e
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_stalled_body_gets_408_and_a_slow_one_gets_through(
    database_url: str, tmp_path: Path
) -> None:
    engine = create_engine(database_url)
    env = {"MOMENTUM_BODY_TIMEOUT_S": "1.5"}
    try:
        with server(database_url, tmp_path, **env) as url, httpx.Client(base_url=url) as http:
            assert http.post(f"{API}/runs", json={"name": "r"}).status_code == 201
            before = snapshot(engine)
            sockets = [stalled(url, method, path, body) for method, path, body in STALLED_WRITES]
            for sock in sockets:
                status, body = read_response(sock)  # the server answers, then closes
                sock.close()
                assert status == 408, body
                error = body["error"]
                assert isinstance(error, dict) and error["code"] == "body_timeout"
                assert "1.5 s" in error["message"]
            assert snapshot(engine) == before

            # A slow client whose body keeps coming is not cut off: the timeout is for
            # a stall, not for the whole upload.
            def trickle() -> Iterator[bytes]:
                raw = json.dumps(batch("loss", range(100))).encode()
                for start in range(0, len(raw), len(raw) // 5 + 1):
                    time.sleep(0.3)
                    yield raw[start : start + len(raw) // 5 + 1]

            slow = http.post(
                f"{API}/runs/1/metrics",
                content=trickle(),
                headers={"content-type": "application/json"},
                timeout=20,
            )
            assert slow.status_code == 200, slow.text
            assert slow.json()["accepted"] == 100
    finally:
        engine.dispose()


@pytest.mark.e2e
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_body_limits_answer_in_mlflows_shape_on_its_routes(
    database_url: str, tmp_path: Path
) -> None:
    """Through the real server: a stalled body (408) and one over the limit (413) on an
    MLflow route come in MLflow's `{"error_code", "message"}`, which its client reads;
    on /api/v1 the same failures keep the contract's shape. Nothing is stored."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    engine = create_engine(database_url)
    env = {"MOMENTUM_BODY_TIMEOUT_S": "1", "MOMENTUM_MAX_BODY_BYTES": "8192"}
    try:
        with server(database_url, tmp_path, **env) as url, httpx.Client(base_url=url) as http:
            assert http.post(f"{API}/runs", json={"name": "r"}).status_code == 201
            before = snapshot(engine)
            writes = [*MLFLOW_STALLED_WRITES, STALLED_WRITES[1]]
            sockets = [stalled(url, method, path, body) for method, path, body in writes]
            for (_, path, _), sock in zip(writes, sockets, strict=True):
                status, body = read_response(sock)
                sock.close()
                assert status == 408, (path, body)
                if path.startswith(API):
                    error = body["error"]
                    assert isinstance(error, dict) and error["code"] == "body_timeout", body
                else:
                    assert set(body) == {"error_code", "message"}, body
                    assert body["error_code"] == "BAD_REQUEST" and "1 s" in str(body["message"])
            metrics = [{"key": "loss", "value": 1.0, "timestamp": 1, "step": s} for s in range(500)]
            too_large = http.post(
                "/api/2.0/mlflow/runs/log-batch", json={"run_id": "1", "metrics": metrics}
            )
            assert "8192 bytes" in assert_mlflow_error(too_large, 413, "INVALID_PARAMETER_VALUE")
            points = {"points": [{"key": "loss", "step": s, "value": 1.0} for s in range(500)]}
            assert_error_shape(
                http.post(f"{API}/runs/1/metrics", json=points), 413, "body_too_large"
            )
            # MLflow's own client turns the answer into an MlflowException with our code.
            client = MlflowClient(tracking_uri=url)
            with pytest.raises(MlflowException) as refused:
                client.log_batch("1", metrics=[_mlflow_metric(step) for step in range(500)])
            assert refused.value.error_code == "INVALID_PARAMETER_VALUE"
            assert "8192 bytes" in refused.value.message
            assert snapshot(engine) == before
    finally:
        engine.dispose()


def _mlflow_metric(step: int) -> object:
    from mlflow.entities import Metric

    return Metric("loss", 1.0, 1, step)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_no_free_pooled_connection_is_a_retryable_503(settings: Settings) -> None:
    small_pool = {"pool_size": 1, "pool_max_overflow": 0, "pool_timeout_s": 0.2}
    with TestClient(create_app(settings.model_copy(update=small_pool))) as http:
        with app_state(http.app).engine.connect():
            busy = http.get(f"{API}/runs")
        assert_error_shape(busy, 503, "database_unavailable")
        assert busy.headers["retry-after"] == "1"
        assert http.get(f"{API}/runs").status_code == 200


TOKENS = {
    "MOMENTUM_TOKEN": "full-secret",
    "MOMENTUM_WORKER_TOKEN": "worker-secret",
    "MOMENTUM_READ_TOKEN": "read-secret",
}
JSON = {"Content-Type": "application/json"}
HUGE = 31 * 1000 * 1000  # the size of the body that cost 640 MB before it met its 401


def peak_rss_bytes(pid: int) -> int:
    """The process's peak resident memory so far (VmHWM): a spike between two looks at
    the current size shows here too."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/<pid>/status")


def send_headers(url: str, method: str, path: str, length: int, token: str | None) -> socket.socket:
    """A client that announces a `length`-byte JSON body and sends none of it yet."""
    host, port = _url_parts(url)
    sock = socket.create_connection((host, port), timeout=10)
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"{auth}Content-Length: {length}\r\n\r\n"
    )
    sock.sendall(head.encode())
    return sock


def huge_json_array() -> Iterator[bytes]:
    """`[{},{},…]`, HUGE bytes in all: parsed, each `{}` becomes a dict of its own."""
    chunk = b"{}," * (1 << 16)
    whole, rest = divmod(HUGE - 4, len(chunk))
    yield b"["
    yield from (chunk for _ in range(whole))
    yield b" " * rest + b"{}]"


def send_huge_body(url: str, token: str | None) -> None:
    """The whole array to POST /runs, for as long as the server takes it."""
    sock = send_headers(url, "POST", f"{API}/runs", HUGE, token)
    try:
        for part in huge_json_array():
            sock.sendall(part)
        read_response(sock)
    except OSError:  # the server answered and closed: exactly what should happen
        pass
    finally:
        sock.close()


@pytest.mark.e2e
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_request_without_a_valid_token_is_refused_before_its_body_is_read(
    database_url: str, tmp_path: Path
) -> None:
    """The answer comes from the headers alone: it arrives while not one byte of the
    announced 31 MB has been sent. In MLflow's shape on its routes; a token whose role
    may not call the route gets its 403 the same way."""
    with server(database_url, tmp_path, **TOKENS) as url:
        refusals = [
            (f"{API}/runs", None, 401, "unauthorized"),
            (f"{API}/runs", "wrong", 401, "unauthorized"),
            (f"{API}/runs/1/metrics", None, 401, "unauthorized"),
            (f"{API}/runs/1/metrics", TOKENS["MOMENTUM_READ_TOKEN"], 403, "forbidden"),
            (f"{API}/nope", None, 401, "unauthorized"),  # no route: still no way in
            ("/api/2.0/mlflow/runs/log-batch", None, 401, "UNAUTHENTICATED"),
            ("/ajax-api/2.0/mlflow/runs/create", "wrong", 401, "UNAUTHENTICATED"),
        ]
        for path, token, status, code in refusals:
            sock = send_headers(url, "POST", path, HUGE, token)
            try:
                answered, body = read_response(sock)  # the socket times out after 10 s
            finally:
                sock.close()
            assert answered == status, (path, body)
            error = body.get("error", body)
            assert isinstance(error, dict), body
            assert code in (error.get("code"), error.get("error_code")), (path, body)


@pytest.mark.e2e
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_unauthenticated_huge_bodies_cost_the_server_no_memory(
    database_url: str, tmp_path: Path
) -> None:
    """Three clients at once each send 31 MB with no token (this took the server from
    119 MB to 1.06 GB before): its peak memory barely moves, and it still serves."""
    with ServerProcess({"MOMENTUM_DATABASE_URL": database_url, **TOKENS}) as process:
        url = process.start()
        assert process.process is not None
        pid = process.process.pid
        full = {"Authorization": f"Bearer {TOKENS['MOMENTUM_TOKEN']}"}
        assert httpx.get(f"{url}{API}/runs", headers=full).status_code == 200
        before = peak_rss_bytes(pid)
        clients = [threading.Thread(target=send_huge_body, args=(url, None)) for _ in range(3)]
        for client in clients:
            client.start()
        for client in clients:
            client.join(timeout=60)
        assert not any(client.is_alive() for client in clients)
        grown = peak_rss_bytes(pid) - before
        assert grown < 50 * 1024 * 1024, f"the server's peak RSS grew by {grown >> 20} MiB"
        assert httpx.get(f"{url}{API}/runs", headers=full).json()["total"] == 0


@pytest.mark.e2e
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_body_trickling_in_gets_408_once_the_deadline_passes(
    database_url: str, tmp_path: Path
) -> None:
    """A byte every 0.2 s never leaves a silent gap of MOMENTUM_BODY_TIMEOUT_S (1 s), yet
    the body is refused once MOMENTUM_BODY_DEADLINE_S (2 s) has passed since it began."""
    env = {"MOMENTUM_BODY_TIMEOUT_S": "1", "MOMENTUM_BODY_DEADLINE_S": "2"}
    with server(database_url, tmp_path, **env) as url:
        assert httpx.post(f"{url}{API}/runs", json={"name": "r"}).status_code == 201
        for path in (f"{API}/runs/1/metrics", "/api/2.0/mlflow/runs/log-batch"):
            sock = send_headers(url, "POST", path, 10_000, None)
            began = time.monotonic()
            try:
                for _ in range(50):  # 10 s of trickling at most, a body never complete
                    sock.sendall(b" ")
                    if select.select([sock], [], [], 0.2)[0]:
                        break
                else:
                    raise AssertionError(f"no answer to a body trickling for 10 s on {path}")
                waited = time.monotonic() - began
                status, body = read_response(sock)
            finally:
                sock.close()
            assert status == 408, body
            assert waited >= 1.9, waited  # not before the deadline
            if path.startswith(API):
                error = body["error"]
                assert isinstance(error, dict) and error["code"] == "body_timeout"
                assert "within 2 s" in error["message"], error
            else:
                assert body["error_code"] == "BAD_REQUEST" and "within 2 s" in str(body["message"])


def small_body_writes(size: int) -> list[tuple[str, str, dict[str, object]]]:
    text = "z" * size
    return [
        ("POST", f"{API}/runs", {"name": "big", "params": {"p": text}}),
        ("PATCH", f"{API}/runs/1", {"params": {"p": text}}),
        ("POST", f"{API}/jobs", {"config": TINY, "name": text}),
        ("POST", f"{API}/sweeps", {"name": text, "base": TINY, "grid": {"seed": [0]}}),
        ("POST", "/api/2.0/mlflow/runs/set-tag", {"run_id": "1", "key": "t", "value": text}),
    ]


@pytest.mark.e2e
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_only_ingest_routes_take_large_bodies(database_url: str, tmp_path: Path) -> None:
    """2 MiB: a metrics batch is accepted; a run, a job, a sweep, an MLflow tag get 413
    naming MOMENTUM_MAX_SMALL_BODY_BYTES (1 MiB), announced or streamed, and nothing is
    stored."""
    engine = create_engine(database_url)
    full = {"Authorization": f"Bearer {TOKENS['MOMENTUM_TOKEN']}", **JSON}
    try:
        with (
            server(database_url, tmp_path, **TOKENS) as url,
            httpx.Client(base_url=url, headers=full, timeout=60) as http,
        ):
            assert http.post(f"{API}/runs", json={"name": "r"}).status_code == 201
            points = batch("loss", range(50_000))
            raw = json.dumps(points).encode()
            assert len(raw) > 2 << 20
            logged = http.post(f"{API}/runs/1/metrics", content=raw)
            assert logged.status_code == 200 and logged.json()["accepted"] == 50_000
            before = snapshot(engine)
            for method, path, body in small_body_writes(2 << 20):
                content = json.dumps(body).encode()
                for sent in (content, iter([content[: 1 << 20], content[1 << 20 :]])):
                    response = http.request(method, path, content=sent)
                    assert response.status_code == 413, (path, response.text)
                    message = response.json().get("error", response.json())["message"]
                    assert "1048576 bytes (MOMENTUM_MAX_SMALL_BODY_BYTES)" in message
            assert snapshot(engine) == before
            # Just under the limit is fine.
            assert http.patch(f"{API}/runs/1", json={"params": {"p": "z" * 1000_000}}).is_success
    finally:
        engine.dispose()


def test_read_and_key_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = Settings()
    assert (defaults.default_history_points, defaults.default_compare_points) == (100_000, 10_000)
    assert (defaults.max_points_per_read, defaults.max_keys_per_run) == (100_000, 1_000)
    for name, value in {"MAX_POINTS_PER_READ": "5000", "MAX_KEYS_PER_RUN": "20"}.items():
        monkeypatch.setenv(f"MOMENTUM_{name}", value)
    assert (Settings().max_points_per_read, Settings().max_keys_per_run) == (5000, 20)


def _read_limited(settings: Settings) -> Settings:
    update = {"max_points_per_read": 50, "default_history_points": 20, "default_compare_points": 10}
    return settings.model_copy(update=update)


def test_reads_have_a_default_budget_and_a_cap_that_is_a_422(settings: Settings) -> None:
    with TestClient(create_app(_read_limited(settings))) as http:
        long = http.post(f"{API}/runs", json={"name": "long"}).json()["id"]
        short = http.post(f"{API}/runs", json={"name": "short"}).json()["id"]
        assert http.post(f"{API}/runs/{long}/metrics", json=batch("loss", range(100))).is_success
        assert http.post(f"{API}/runs/{short}/metrics", json=batch("loss", range(5))).is_success
        history = http.get(f"{API}/runs/{long}/metrics/loss").json()
        assert len(history["steps"]) <= 20 and history["total"] == 100 and history["downsampled"]
        whole = http.get(f"{API}/runs/{short}/metrics/loss").json()  # small: unchanged
        assert whole["steps"] == list(range(5)) and not whole["downsampled"]
        assert len(http.get(f"{API}/runs/{long}/metrics/loss?max_points=50").json()["steps"]) > 20
        compared = http.get(f"{API}/compare", params={"run_ids": f"{long},{short}", "keys": "loss"})
        long_series, short_series = compared.json()["series"]
        assert len(long_series["steps"]) <= 10 and long_series["downsampled"]
        assert short_series["steps"] == list(range(5))
        for path, query in [
            (f"/runs/{long}/metrics/loss", {"max_points": 51}),
            ("/compare", {"run_ids": long, "keys": "loss", "max_points": 51, "smoothing": 0.5}),
        ]:
            refused = http.get(f"{API}{path}", params=query)
            assert_error_shape(refused, 422, "validation_error")
            assert "MOMENTUM_MAX_POINTS_PER_READ (50)" in refused.json()["error"]["message"]
            assert refused.json()["error"]["detail"][0]["loc"] == ["query", "max_points"]


def _log_batch(http: TestClient, run_id: int, keys: list[str]) -> httpx.Response:
    metrics = [{"key": key, "value": 1.0, "timestamp": 1, "step": 7} for key in keys]
    body = {"run_id": str(run_id), "metrics": metrics, "params": [{"key": "p", "value": "1"}]}
    return http.post("/api/2.0/mlflow/runs/log-batch", json=body)


def _points(*keys: str, steps: range = range(3)) -> dict[str, object]:
    return {"points": [{"key": k, "step": step, "value": 0.5} for k in keys for step in steps]}


def test_a_batch_taking_a_run_past_its_key_limit_stores_nothing(settings: Settings) -> None:
    engine = create_engine(settings.sqlalchemy_url)
    try:
        with TestClient(create_app(settings.model_copy(update={"max_keys_per_run": 3}))) as http:
            run_id = http.post(f"{API}/runs", json={"name": "keys"}).json()["id"]
            metrics = f"{API}/runs/{run_id}/metrics"
            assert http.post(metrics, json=_points("a", "b")).is_success
            before = snapshot(engine)
            refused = http.post(metrics, json=_points("a", "c", "d", steps=range(3, 50)))
            assert_error_shape(refused, 422, "too_many_keys")
            message = refused.json()["error"]["message"]
            assert "4 metric keys" in message and "MOMENTUM_MAX_KEYS_PER_RUN" in message
            alone = http.post(metrics, json=_points("k1", "k2", "k3", "k4"))  # over by itself
            assert_error_shape(alone, 422, "too_many_keys")
            for keys in (["c", "d"], ["c", "d", "e", "f"]):  # params in the batch: not stored
                message = assert_mlflow_error(
                    _log_batch(http, run_id, keys), 400, "INVALID_PARAMETER_VALUE"
                )
                assert "MOMENTUM_MAX_KEYS_PER_RUN" in message
            assert snapshot(engine) == before
            one = {"run_id": str(run_id), "key": "c", "value": 1.0, "timestamp": 1, "step": 1}
            assert http.post("/api/2.0/mlflow/runs/log-metric", json=one).is_success  # the 3rd
            before = snapshot(engine)
            refused_one = http.post("/api/2.0/mlflow/runs/log-metric", json={**one, "key": "d"})
            message = assert_mlflow_error(refused_one, 400, "INVALID_PARAMETER_VALUE")
            assert "MOMENTUM_MAX_KEYS_PER_RUN" in message
            assert snapshot(engine) == before
            assert http.post(metrics, json=_points("a", "b", "c", steps=range(9, 20))).is_success
    finally:
        engine.dispose()


@pytest.mark.e2e
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_long_series_read_with_defaults_is_bounded_in_bytes(
    database_url: str, tmp_path: Path
) -> None:
    """200,000 points: the default compare answers 10,000 per series (~1 MB, not ~13 MB),
    a history read 100,000; the whole series stays one step range or export.csv away."""
    with server(database_url, tmp_path) as url, httpx.Client(base_url=url, timeout=60) as http:
        run_id = http.post(f"{API}/runs", json={"name": "long"}).json()["id"]
        for start in range(0, 200_000, 100_000):
            logged = http.post(
                f"{API}/runs/{run_id}/metrics", json=batch("loss", range(start, start + 100_000))
            )
            assert logged.status_code == 200, logged.text
        compared = http.get(
            f"{API}/compare", params={"run_ids": run_id, "keys": "loss", "smoothing": 0.5}
        )
        (series,) = compared.json()["series"]
        assert len(series["steps"]) <= 10_000 and series["total"] == 200_000
        assert len(compared.content) < 2_000_000, len(compared.content)
        history = http.get(f"{API}/runs/{run_id}/metrics/loss")
        assert len(history.json()["steps"]) <= 100_000 and history.json()["total"] == 200_000
        assert len(history.content) < 8_000_000, len(history.content)
        zoomed = http.get(f"{API}/runs/{run_id}/metrics/loss?start_step=150000")
        assert zoomed.json()["steps"] == list(range(150_000, 200_000))
