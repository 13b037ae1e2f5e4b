"""The real thing: `momentum db upgrade` and `momentum serve` as processes, used over HTTP."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support import live_server

pytestmark = pytest.mark.e2e


def test_cli_upgrade_then_serve_on_a_fresh_data_dir(tmp_path: Path) -> None:
    env = {"MOMENTUM_DATA_DIR": str(tmp_path / "fresh")}
    upgrade = subprocess.run(
        [sys.executable, "-m", "momentum.cli", "db", "upgrade"],
        env={**_base_env(), **env},
        capture_output=True,
        text=True,
        check=True,
    )
    assert "database at head" in upgrade.stdout
    assert (tmp_path / "fresh" / "momentum.sqlite3").exists()
    with live_server(env) as url:
        assert httpx.get(f"{url}/readyz").json()["status"] == "ready"


def test_log_and_read_through_the_real_server(database_url: str) -> None:
    with (
        live_server({"MOMENTUM_DATABASE_URL": database_url}) as url,
        httpx.Client(base_url=url, timeout=30) as http,
    ):
        run = http.post("/api/v1/runs", json={"name": "e2e", "external_id": "e2e-1"}).json()
        for start in (0, 10_000):
            batch = [
                {"key": key, "step": step, "value": step / 1000}
                for step in range(start, start + 5_000)
                for key in ("loss", "accuracy")
            ]
            batch[-1]["value"] = "NaN"
            response = http.post(f"/api/v1/runs/{run['id']}/metrics", json={"points": batch})
            assert response.status_code == 200
            assert response.json()["accepted"] == 10_000
        history = http.get(f"/api/v1/runs/{run['id']}/metrics/accuracy").json()
        assert len(history["steps"]) == 10_000
        assert history["values"][-1] == "NaN"
        listed = http.get("/api/v1/runs").json()["items"][0]
        assert listed["last_step"] == 14_999
        assert listed["latest"] == {"accuracy": "NaN", "loss": 14.999}
        assert listed["best"] == {"accuracy": 14.998, "loss": 0.0}
    # Acknowledged means committed: a new server process sees everything.
    with live_server({"MOMENTUM_DATABASE_URL": database_url}) as url:
        series = httpx.get(f"{url}/api/v1/runs/{run['id']}/metrics").json()["items"]
        assert [(s["key"], s["count"]) for s in series] == [("accuracy", 10_000), ("loss", 10_000)]


def _base_env() -> dict[str, str]:
    import os

    return dict(os.environ)
