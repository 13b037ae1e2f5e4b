"""An MLflow-logging script as an entry point (issue 17): `mlflow.start_run()` inside the
job's child attaches to the job's run through MLFLOW_RUN_ID and logs into it with the
run token the worker hands it, on a service that requires tokens."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import wait_until
from tests.test_worker_e2e import Workers, sqlite_server, wait_for_status

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(sys.platform != "linux", reason="process groups"),
]

FULL, WORKER = "full-secret", "worker-secret"
SCRIPT = """
import argparse
import mlflow

parser = argparse.ArgumentParser()
parser.add_argument("--steps", type=int)
args = parser.parse_args()
with mlflow.start_run():
    for step in range(args.steps):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
"""
TOML = """
[entry_points.mlprobe]
command = [{python}, "mlprobe.py"]
total_param = "steps"
[entry_points.mlprobe.params]
steps = {{ type = "int", default = 5, min = 1 }}
"""


@pytest.fixture
def server(sqlite_template: Path, tmp_path: Path) -> Iterator[str]:
    tokens = {"MOMENTUM_TOKEN": FULL, "MOMENTUM_WORKER_TOKEN": WORKER}
    with sqlite_server(sqlite_template, tmp_path, **tokens) as url:
        yield url


def test_an_mlflow_script_logs_into_its_jobs_run_with_the_run_token(
    server: str, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "mlprobe.py").write_text(textwrap.dedent(SCRIPT))
    (project / "momentum.toml").write_text(TOML.format(python=json.dumps(sys.executable)))
    workers = Workers(server, tmp_path)
    headers = {"Authorization": f"Bearer {FULL}"}
    with httpx.Client(base_url=f"{server}/api/v1", headers=headers, timeout=30) as api:
        try:
            extra = ["--token", WORKER, "--entry-points", str(project / "momentum.toml")]
            workers.start("w-ml", extra=extra)
            wait_until(lambda: api.get("/entry-points").json()["total"] == 1, timeout=60)
            created = api.post("/jobs", json={"entry_point": "mlprobe", "params": {"steps": 4}})
            assert created.status_code == 201, created.text
            job = wait_for_status(api, created.json()["id"], "succeeded", timeout=120)
        finally:
            workers.stop_all()
        history = api.get(f"/runs/{job['run_id']}/metrics/loss").json()
        runs = api.get("/runs").json()
    assert history["steps"] == [0, 1, 2, 3]
    assert history["values"] == [1.0, 0.5, 1.0 / 3, 0.25]
    assert runs["total"] == 1  # the script attached to the job's run, creating none
