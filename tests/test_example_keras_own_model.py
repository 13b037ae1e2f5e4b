"""examples/keras-own-model: its momentum.toml declares exactly the script's options, and
the script runs as the README says: by hand against the real service (creating a run),
and as a job's child under a real `momentum worker` started with that momentum.toml."""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from momentum.entry_points import load_entry_points
from tests.support import wait_until
from tests.test_example_own_model import run_script, server
from tests.test_worker_e2e import Workers, get_job, workers

pytest.importorskip("momentum.keras", reason="the keras extra is not installed")
__all__ = ["server", "workers"]  # fixtures, used by name
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "keras-own-model"


@pytest.fixture
def api(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{server}/api/v1", timeout=30) as client:
        yield client


def test_the_declared_params_are_the_keras_scripts_options() -> None:
    entry = load_entry_points(EXAMPLE / "momentum.toml")["train"]
    options = re.findall(r'add_argument\("--(\w+)"', (EXAMPLE / "train.py").read_text())
    assert list(entry.definition.params) == options
    assert entry.directory == EXAMPLE and entry.definition.total_param == "steps"
    assert entry.definition.params["nesterov"].type == "bool"


def finished_job(api: httpx.Client, job_id: int, timeout: float) -> dict[str, object]:
    """The job once it has ended, however it ended (a failure is not waited out)."""
    deadline = time.monotonic() + timeout
    while (job := get_job(api, job_id))["status"] not in ("succeeded", "failed", "cancelled"):
        assert time.monotonic() < deadline, f"job {job_id} still {job['status']}"
        time.sleep(0.1)
    return job


def steps_and_values(api: httpx.Client, run_id: int, key: str) -> tuple[list[int], list[float]]:
    series = api.get(f"/runs/{run_id}/metrics/{key}")
    assert series.status_code == 200, series.text
    return series.json()["steps"], series.json()["values"]


@pytest.mark.e2e
def test_the_keras_example_trains_by_hand_logging_every_batch(
    server: str, api: httpx.Client, tmp_path: Path
) -> None:
    argv = ["python", "train.py", "--steps=60", "--momentum=0.5", "--nesterov=true"]
    run_script(server, tmp_path, argv, example=EXAMPLE)
    [run] = api.get("/runs", params={"q": "keras-digits-mu0.5-nesterov-seed0"}).json()["items"]
    assert run["status"] == "succeeded"
    assert (run["params"]["momentum"], run["params"]["nesterov"]) == (0.5, True)
    steps, loss = steps_and_values(api, run["id"], "loss")
    assert steps == list(range(60)) and loss[-1] < loss[0]
    assert steps_and_values(api, run["id"], "accuracy")[0] == list(range(60))
    # One validation per Keras epoch of 50 batches, the last one where training stopped.
    assert steps_and_values(api, run["id"], "val_loss")[0] == [49, 59]
    assert steps_and_values(api, run["id"], "val_accuracy")[0] == [49, 59]


@pytest.mark.e2e
def test_the_keras_example_runs_as_a_jobs_child_under_a_worker(
    api: httpx.Client, workers: Workers, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The toml says `python`: let it be this interpreter, the one that has Keras.
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    workers.start("w-keras", extra=["--entry-points", str(EXAMPLE / "momentum.toml")])
    wait_until(lambda: bool(api.get("/entry-points/train").is_success), timeout=60)
    body = {"entry_point": "train", "params": {"nesterov": True, "seed": 1, "steps": 40}}
    created = api.post("/jobs", json=body)
    assert created.status_code == 201, created.text
    done = finished_job(api, created.json()["id"], timeout=240)
    assert done["status"] == "succeeded", (done["error"], workers.log_tails())
    run = api.get(f"/runs/{done['run_id']}").json()
    full = {"momentum": 0.9, "nesterov": True, "lr": 0.05, "seed": 1, "steps": 40}
    assert (run["params"], run["last_step"], run["status"]) == (full, 39, "succeeded")
    assert steps_and_values(api, run["id"], "loss")[0] == list(range(40))
    assert steps_and_values(api, run["id"], "val_accuracy")[0] == [39]
