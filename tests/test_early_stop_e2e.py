"""Stopping a job early, end to end: a real service, real `momentum worker` processes.

- a built-in job held mid-way (the workers' hold file), stopped with POST /jobs/{id}/stop:
  it ends `succeeded` with `early_stopped`, fewer points than its steps, all of them stored;
- an entry-point job whose script logs a few steps and then waits on a file the test
  never creates, stopped with `momentum jobs stop`: its child gets SIGTERM (it leaves a
  marker, then exits 3), and the job ends `succeeded` as stopped, not failed.

Nothing waits on the machine's speed: the first job is held by the hold file, the
second waits on a file.
"""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from momentum.cli import main
from tests.support import wait_until
from tests.test_entry_points_e2e import job_log
from tests.test_worker_e2e import (
    COMMON,
    Workers,
    api,
    get_job,
    sqlite_server,
    steps_of,
    submit,
    wait_for_status,
    workers,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(sys.platform != "linux", reason="process groups"),
]
__all__ = ["api", "server", "workers"]  # fixtures, used by name
TAG = "momentum.early_stopped"


@pytest.fixture
def server(sqlite_template: Path, tmp_path: Path) -> Iterator[str]:
    """test_worker_e2e's service with 10 s leases: no job here should change hands, even
    on a machine so busy that a worker's heartbeat is late (a stop still reaches the
    worker within its 2 s heartbeat interval)."""
    with sqlite_server(sqlite_template, tmp_path, MOMENTUM_LEASE_SECONDS="10") as url:
        yield url


SCRIPT = """
import os, signal, sys, time
import momentum

job = os.environ["MOMENTUM_JOB_ID"]

def on_sigterm(signum, frame):
    open(f"sigterm-{job}", "w").close()
    sys.exit(3)  # non-zero, as many scripts end on a signal: still not a failure

signal.signal(signal.SIGTERM, on_sigterm)
with momentum.Run() as run:
    for step in range(5):
        run.log(step, loss=1.0 / (step + 1))
    run.flush(timeout=30)
    print("logged 5 steps", flush=True)
    open(f"logged-{job}", "w").close()
    while not os.path.exists(f"go-{job}"):  # the test never creates it
        time.sleep(0.05)
"""
TOML = """
[entry_points.slow]
command = [{python}, "slow.py"]
total_param = "steps"
[entry_points.slow.params]
steps = {{ type = "int", default = 50, min = 1 }}
"""


def test_a_held_built_in_job_stopped_by_hand_ends_succeeded_with_its_points(
    api: httpx.Client, workers: Workers
) -> None:
    config = {"dataset": "blobs", "model": "logreg", "steps": 200, "eval_every": 50}
    workers.hold(from_step=20)
    created = submit(api, **config)
    workers.start("w-a")
    # Held after step 19 (20 steps done). Generous: a busy machine starts torch slowly.
    wait_until(lambda: get_job(api, created["id"])["progress_step"] == 20, timeout=180)
    response = api.post(f"/jobs/{created['id']}/stop", json={"reason": "seen enough"})
    assert response.status_code == 200, response.text
    verdict = {"step": 19, "rule": "manual", "reason": "stopped by hand at step 19: seen enough"}
    assert response.json()["early_stopped"] == verdict
    # The worker hears it at its next heartbeat (held meanwhile, as the hold file stops
    # any job that must stop); released only then, so it trains not one step further.
    wait_until(lambda: "stopped early at step 20" in workers.log("w-a"), timeout=60)
    workers.release()
    done = wait_for_status(api, created["id"], "succeeded", timeout=120)
    assert done["early_stopped"] == verdict and done["error"] is None
    # It ended the step it was at (step 20, the last one logged and evaluated) and stopped.
    assert (done["progress_step"], done["progress_total"]) == (21, 200)
    assert done["summary"]["stopped_early"] is True and done["summary"]["steps_done"] == 21
    assert steps_of(api, done["run_id"], "loss") == list(range(21))  # every point stored
    assert steps_of(api, done["run_id"], "val_loss") == [0, 20]
    run = api.get(f"/runs/{done['run_id']}").json()
    assert (run["status"], run["early_stopped"]) == ("succeeded", verdict)
    assert run["tags"][TAG] == verdict["reason"]
    assert COMMON["log_every"] == 1  # each step logged: the counts above are exact


@pytest.fixture
def project(tmp_path: Path) -> Path:
    directory = tmp_path / "project"
    directory.mkdir()
    (directory / "slow.py").write_text(textwrap.dedent(SCRIPT))
    (directory / "momentum.toml").write_text(TOML.format(python=json.dumps(sys.executable)))
    return directory


def test_an_entry_point_job_stopped_early_sigterms_its_child_and_succeeds(
    api: httpx.Client, server: str, workers: Workers, project: Path
) -> None:
    extra = ["--entry-points", str(project / "momentum.toml"), "--grace", "20"]
    workers.start("w-a", extra=extra)
    created = None

    def submitted() -> bool:
        nonlocal created
        response = api.post("/jobs", json={"entry_point": "slow", "params": {}})
        created = response.json() if response.status_code == 201 else None
        return created is not None

    wait_until(submitted, timeout=180)  # once the worker has registered `slow`
    assert created is not None
    job_id = created["id"]
    wait_until(lambda: (project / f"logged-{job_id}").exists(), timeout=120)
    env = {"MOMENTUM_URL": server, "MOMENTUM_TOKEN": ""}
    result = CliRunner().invoke(main, ["jobs", "stop", str(job_id), "--reason", "plateau"], env=env)
    assert result.exit_code == 0, result.output
    assert f"job {job_id} running, stopped early: stopped by hand at step 4: plateau" in (
        result.output
    )
    done = wait_for_status(api, job_id, "succeeded", timeout=120)
    assert (project / f"sigterm-{job_id}").exists(), "the child got SIGTERM"
    assert done["error"] is None and done["early_stopped"]["rule"] == "manual"
    assert done["summary"]["stopped_early"] is True
    assert done["summary"]["exit"] == "exit code 3"  # completed whatever its exit code
    assert (done["progress_step"], done["progress_total"]) == (5, 50)
    run = api.get(f"/runs/{done['run_id']}").json()
    assert (run["status"], run["last_step"]) == ("succeeded", 4)
    assert run["early_stopped"] == done["early_stopped"]
    log, _ = job_log(api, job_id)
    assert "logged 5 steps" in log and "momentum: job stopped early at step" in log
    assert "completing the job" in log
    again = CliRunner().invoke(main, ["jobs", "stop", str(job_id)], env=env)
    assert again.exit_code == 1 and "only a running job can be stopped" in again.output
    assert get_job(api, job_id)["status"] == "succeeded"
