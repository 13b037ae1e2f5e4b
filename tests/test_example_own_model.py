"""examples/pytorch-own-model: its momentum.toml declares exactly the script's options,
and the script runs as the README says, by hand against the real service (creating a
run) and as a job's child would (writing the run MOMENTUM_RUN_ID names)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from momentum.entry_points import command_argv, load_entry_points
from tests.support import live_server

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "pytorch-own-model"


def test_the_declared_params_are_the_scripts_options() -> None:
    entry = load_entry_points(EXAMPLE / "momentum.toml")["train"]
    options = re.findall(r'add_argument\("--(\w+)"', (EXAMPLE / "train.py").read_text())
    assert list(entry.definition.params) == options
    assert entry.directory == EXAMPLE and entry.definition.total_param == "steps"


@pytest.fixture(scope="module")
def server(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    database = tmp_path_factory.mktemp("example") / "momentum.sqlite3"
    shutil.copyfile(sqlite_template, database)
    with live_server({"MOMENTUM_DATABASE_URL": f"sqlite:///{database}"}) as url:
        yield url


def run_script(
    server: str, tmp_path: Path, argv: list[str], example: Path = EXAMPLE, **env: str
) -> None:
    """`argv` (a `python SCRIPT` command) run by hand in `example`, logging to `server`."""
    environment = {**os.environ, "MOMENTUM_URL": server, "OMP_NUM_THREADS": "1", **env}
    environment["MOMENTUM_SPOOL_DIR"] = str(tmp_path / "spool")
    environment.pop("MOMENTUM_TOKEN", None)
    done = subprocess.run(
        [sys.executable, *argv[1:]],
        cwd=example,
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.e2e
def test_the_example_trains_by_hand_and_as_a_jobs_child(server: str, tmp_path: Path) -> None:
    with httpx.Client(base_url=f"{server}/api/v1", timeout=30) as api:
        run_script(server, tmp_path, ["python", "train.py", "--steps=60", "--momentum=0.5"])
        [by_hand] = api.get("/runs", params={"q": "digits-mu0.5-seed0"}).json()["items"]
        assert by_hand["params"]["momentum"] == 0.5 and by_hand["status"] == "succeeded"
        loss = api.get(f"/runs/{by_hand['id']}/metrics/loss").json()
        assert loss["steps"] == list(range(60)) and loss["values"][-1] < loss["values"][0]

        params = {"momentum": 0.9, "lr": 0.05, "seed": 1, "steps": 40, "hidden": 32}
        job_run = api.post("/runs", json={"name": "job-run", "params": params}).json()
        argv = command_argv(["python", "train.py"], params)  # what the worker runs
        run_script(server, tmp_path, argv, MOMENTUM_RUN_ID=str(job_run["id"]))
        written = api.get(f"/runs/{job_run['id']}").json()
        assert (written["name"], written["params"], written["last_step"]) == ("job-run", params, 39)
        assert written["status"] == "succeeded"
