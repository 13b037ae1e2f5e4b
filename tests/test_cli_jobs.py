"""`momentum submit`, `sweep`, `jobs`, `runs`, `workers` against a real server."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import httpx
import pytest
from click.testing import CliRunner, Result

from momentum.cli import main
from momentum.cli_jobs import parse_grid
from tests.support import free_port, live_server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def url(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    database = tmp_path_factory.mktemp("cli") / "momentum.sqlite3"
    shutil.copyfile(sqlite_template, database)
    with live_server({"MOMENTUM_DATABASE_URL": f"sqlite:///{database}"}) as base_url:
        yield base_url


def cli(url: str, *args: str) -> Result:
    env = {"MOMENTUM_URL": url, "MOMENTUM_TOKEN": "", "COLUMNS": "200"}
    return CliRunner().invoke(main, list(args), env=env)


def get(url: str, path: str) -> Any:
    return httpx.get(f"{url}/api/v1{path}").json()


def test_submit_queues_a_job_with_the_options_given(url: str) -> None:
    result = cli(url, "submit", "--dataset", "ravine", "--model", "linear", "--steps", "50")
    assert result.exit_code == 0, result.output
    job_id = int(result.output.split()[1])
    job = get(url, f"/jobs/{job_id}")
    assert (job["status"], job["config"]["steps"], job["config"]["dataset"]) == (
        "queued",
        50,
        "ravine",
    )
    assert f"(run {job['run_id']})" in result.output


def test_an_api_error_shows_the_contracts_message_and_exits_1(url: str) -> None:
    result = cli(url, "submit", "--dataset", "ravine", "--model", "cnn")
    assert result.exit_code == 1
    assert "cnn" in result.output and "ravine" in result.output
    missing = cli(url, "jobs", "cancel", "999999")
    assert (missing.exit_code, "does not exist" in missing.output) == (1, True)


def test_sweep_types_the_grid_and_runs_filters_by_it(url: str) -> None:
    result = cli(
        url, "sweep", "--grid", "momentum=0,0.5", "--grid", "seed=0,1", "--name", "mu",
        "--dataset", "ravine", "--model", "linear", "--steps", "20",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    sweep_id = int(result.output.split()[1].rstrip(":"))
    sweep = get(url, f"/sweeps/{sweep_id}")
    assert sweep["grid"] == {"momentum": [0.0, 0.5], "seed": [0, 1]}
    assert sweep["base"] == {"dataset": "ravine", "model": "linear", "steps": 20}
    assert "4 jobs queued" in result.output
    runs = cli(url, "runs", "--sweep", str(sweep_id))
    assert runs.exit_code == 0, runs.output
    assert "runs (4 of 4)" in runs.output and "mu momentum=0.5 seed=1" in runs.output
    jobs = cli(url, "jobs", "--sweep", str(sweep_id), "--status", "queued")
    assert "jobs (4 of 4)" in jobs.output and "mu momentum=0.0 seed=0" in jobs.output


def test_jobs_cancel_and_retry(url: str) -> None:
    submitted = cli(url, "submit", "--dataset", "blobs", "--model", "logreg", "--name", "cr")
    job_id = submitted.output.split()[1]
    cancelled = cli(url, "jobs", "cancel", job_id)
    assert (cancelled.exit_code, cancelled.output.strip()) == (0, f"job {job_id} cancelled")
    listed = cli(url, "jobs", "--status", "cancelled")
    assert f"│ {job_id} " in listed.output and "cr" in listed.output
    retried = cli(url, "jobs", "retry", job_id)
    assert retried.output.strip() == f"job {job_id} queued"
    assert get(url, f"/jobs/{job_id}")["status"] == "queued"


def test_workers_lists_a_worker_that_claimed(url: str) -> None:
    # keras: no job here uses it, so the claim takes nothing (204) but records the worker.
    body = {"worker_id": "gpu-box-7", "device": "cuda", "frameworks": ["keras"]}
    assert httpx.post(f"{url}/api/v1/jobs/claim", json=body).status_code == 204
    result = cli(url, "workers")
    assert result.exit_code == 0, result.output
    assert "gpu-box-7" in result.output and "cuda" in result.output


def test_an_unreachable_service_is_a_clear_error() -> None:
    result = cli(f"http://127.0.0.1:{free_port()}", "jobs")
    assert result.exit_code == 1 and "cannot reach" in result.output


def test_parse_grid_types_values_by_field_and_rejects_bad_ones() -> None:
    grid = parse_grid(("momentum=0,0.9", "optimizer=sgd,adam", "stop-on-divergence=true,false"))
    assert grid == {
        "momentum": [0.0, 0.9],
        "optimizer": ["sgd", "adam"],
        "stop_on_divergence": [True, False],
    }
    for bad in ("momentun=0.1", "seed=x", "momentum", "optimizer=sgd,rmsprop"):
        with pytest.raises(click.BadParameter):
            parse_grid((bad,))
