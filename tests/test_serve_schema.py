"""`momentum serve` and the schema: a fresh SQLite data dir is migrated at start and the
README's plain-HTTP examples work on it; an unmigrated PostgreSQL is refused with the
command to run; while migrations are pending the API says so (503 `migrations_pending`)
and the reaper logs it once, not a traceback a round."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from service import Settings, create_app
from tests.support import ServerProcess, free_port, scratch_postgres_database, wait_until
from tests.test_bad_input import assert_error_shape

README = Path(__file__).resolve().parent.parent / "README.md"
API = "/api/v1"
UPGRADE = "momentum db upgrade"
REAPER_WAITS = "the reaper waits for migrations"


@pytest.fixture
def fresh_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A new, empty data directory and no database URL: `momentum serve` as a newcomer
    runs it."""
    monkeypatch.delenv("MOMENTUM_DATABASE_URL", raising=False)
    return {"MOMENTUM_DATA_DIR": str(tmp_path / "data")}


@pytest.fixture
def empty_database_url(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[str]:
    """A database of the test's backend with no tables at all."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.sqlite3'}"
        return
    server: str = request.getfixturevalue("postgres_server")
    with scratch_postgres_database(server, "momentum_empty") as url:
        yield url


def readme_http_example() -> str:
    """The README's "Over plain HTTP" block, as written."""
    text = README.read_text()
    start = text.index("Over plain HTTP")
    return re.search(r"```bash\n(.*?)```", text[start:], flags=re.DOTALL).group(1)  # type: ignore[union-attr]


def json_documents(text: str) -> list[Any]:
    decoder, documents, position = json.JSONDecoder(), [], 0
    while position < len(text):
        document, position = decoder.raw_decode(text, position)
        documents.append(document)
        while position < len(text) and text[position].isspace():
            position += 1
    return documents


@pytest.mark.e2e
def test_serve_on_an_empty_data_dir_migrates_and_the_readme_curl_examples_work(
    fresh_env: dict[str, str],
) -> None:
    with ServerProcess(fresh_env) as server:
        url = server.start()  # waits for /readyz: 200 only once migrated
        script = readme_http_example().replace("localhost:8000", f"localhost:{server.port}")
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        created, accepted, history = json_documents(done.stdout)
        assert (created["id"], created["name"]) == (1, "sgd-baseline")
        assert accepted == {"run_id": 1, "accepted": 3, "keys": ["accuracy", "loss"]}
        assert (history["steps"], history["values"]) == ([0, 1], [2.31, "NaN"])
        assert httpx.get(f"{url}/readyz").json()["status"] == "ready"
    assert (Path(fresh_env["MOMENTUM_DATA_DIR"]) / "momentum.sqlite3").is_file()


@pytest.mark.e2e
def test_pending_migrations_answer_503_and_the_reaper_logs_it_once(
    fresh_env: dict[str, str], tmp_path: Path
) -> None:
    """`--no-upgrade` on a fresh data dir: the state of a replica started before its
    migration ran. Then `momentum db upgrade` and the same server serves."""
    env = {**os.environ, **fresh_env, "MOMENTUM_REAPER_INTERVAL_S": "0.05"}
    port, log_path = free_port(), tmp_path / "serve.log"
    argv = [sys.executable, "-m", "momentum.cli", "serve", "--port", str(port), "--no-upgrade"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(url), timeout=60)
        _assert_pending(httpx.post(f"{url}{API}/runs", json={"name": "r"}))
        _assert_pending(httpx.get(f"{url}{API}/runs"))
        mlflow = httpx.get(f"{url}/api/2.0/mlflow/experiments/get-by-name?experiment_name=x")
        assert mlflow.status_code == 503 and UPGRADE in mlflow.json()["message"]
        wait_until(lambda: REAPER_WAITS in log_path.read_text(), timeout=30)
        time.sleep(1.0)  # many more reaper rounds (every 0.05 s): still one line
        log_text = log_path.read_text()
        assert log_text.count(REAPER_WAITS) == 1 and "Traceback" not in log_text, log_text

        upgraded = subprocess.run(
            [sys.executable, "-m", "momentum.cli", "db", "upgrade"], env=env, timeout=60
        )
        assert upgraded.returncode == 0
        created = httpx.post(f"{url}{API}/runs", json={"name": "r"})
        assert created.status_code == 201, created.text
        wait_until(lambda: "the reaper works again" in log_path.read_text(), timeout=30)
        assert "Traceback" not in log_path.read_text()
    finally:
        process.terminate()
        process.wait(timeout=20)


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def _assert_pending(response: httpx.Response) -> None:
    assert_error_shape(response, 503, "migrations_pending")
    assert UPGRADE in response.json()["error"]["message"]
    assert response.headers["retry-after"]


def test_an_unmigrated_database_answers_migrations_pending_on_both_backends(
    empty_database_url: str, tmp_path: Path
) -> None:
    settings = Settings(database_url=empty_database_url, data_dir=tmp_path)
    with TestClient(create_app(settings)) as client:
        for response in (
            client.post(f"{API}/runs", json={"name": "r"}),
            client.get(f"{API}/jobs"),
            client.get(f"{API}/version"),
        ):
            assert response.status_code == 503, response.text
            error = response.json()["error"]
            assert error["code"] == "migrations_pending", error
            assert "no revision" in error["message"] and UPGRADE in error["message"]
        assert client.get("/readyz").json()["status"] == "migrations_pending"


@pytest.mark.e2e
@pytest.mark.postgres
def test_serve_refuses_an_unmigrated_postgres_in_one_line_and_upgrade_migrates_it(
    postgres_server: str,
) -> None:
    with scratch_postgres_database(postgres_server, "momentum_serve") as database_url:
        env = {**os.environ, "MOMENTUM_DATABASE_URL": database_url}
        argv = [sys.executable, "-m", "momentum.cli", "serve", "--port", str(free_port())]
        refused = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
        assert refused.returncode == 1
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and UPGRADE in lines[0], refused.stderr
        assert "no revision" in lines[0] and "--upgrade" in lines[0]

        with ServerProcess({"MOMENTUM_DATABASE_URL": database_url}, args=["--upgrade"]) as server:
            url = server.start()
            created = httpx.post(f"{url}{API}/runs", json={"name": "r"})
            assert created.status_code == 201, created.text
