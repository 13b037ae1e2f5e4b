"""The worker running entry-point jobs: real child processes, the queue faked in memory
(tests/fake_queue.py). It registers, claims by name and digest, runs the command with the
params and the run token, and reports exit 0, a failure with the stderr tail, a cancel
(after the grace), a stop (released) and a lost lease (nothing). The end-to-end test with
the real service is tests/test_entry_points_e2e.py."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from momentum.cli import main
from momentum.client import MomentumClient
from momentum.contract import JobFail
from momentum.entry_points import load_entry_points
from momentum.worker import Outcome, Worker, WorkerOptions
from tests.fake_queue import FakeQueue, job_public
from tests.support import wait_until
from tests.test_child_process import alive, pid_in

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="process groups, /proc")

TOML = """
[entry_points.train]
command = [{python}, "script.py"]
total_param = "steps"
[entry_points.train.params]
momentum = {{ type = "float", default = 0.9, min = 0.0, max = 1.0 }}
steps = {{ type = "int", default = 40, min = 1 }}
amp = {{ type = "bool", default = false }}
arch = {{ type = "str", default = "mlp" }}
"""
RECORD = """
import json, os, sys
keys = ["MOMENTUM_URL", "MOMENTUM_TOKEN", "MOMENTUM_RUN_ID", "MOMENTUM_JOB_ID",
        "MOMENTUM_PARAMS", "MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_TOKEN", "MLFLOW_RUN_ID"]
seen = {"argv": sys.argv[1:], "cwd": os.getcwd(), "env": {k: os.environ.get(k) for k in keys}}
open("seen.json", "w").write(json.dumps(seen))
"""
EXIT_3 = """
import sys
for n in range(25):
    print(f"problem {n}", file=sys.stderr)
sys.exit(3)
"""
# Writes its pid, then ignores SIGTERM (stubborn) or ends on it (polite).
WAITING = """
import os, signal, sys, time
signal.signal(signal.SIGTERM, {handler})
open("child.pid", "w").write(str(os.getpid()))
while True:
    time.sleep(1)
"""
STUBBORN = WAITING.format(handler="signal.SIG_IGN")
POLITE = WAITING.format(handler="lambda *_: sys.exit(0)")
PARAMS = {"momentum": 0.5, "steps": 40, "amp": True, "arch": "cnn"}


class QuietDisplay:
    def __init__(self) -> None:
        self.ended: list[Outcome] = []

    def job_started(self, lease: Any) -> tuple[Any, Any]:
        return None, None

    def job_progress(self, lease: Any, step: int, total: int) -> None:
        return None

    def job_ended(self, lease: Any, outcome: Outcome, detail: str) -> None:
        self.ended.append(outcome)


def make_worker(tmp_path: Path, script: str, queue: FakeQueue) -> tuple[Worker, QuietDisplay]:
    (tmp_path / "script.py").write_text(textwrap.dedent(script))
    (tmp_path / "momentum.toml").write_text(TOML.format(python=json.dumps(sys.executable)))
    entry_points = load_entry_points(tmp_path / "momentum.toml")
    digest = entry_points["train"].digest
    queue.queued.append(job_public(params=PARAMS, entry_point_digest=digest))
    client = MomentumClient("http://svc", "worker-secret", transport=queue.transport())
    options = WorkerOptions(
        worker_id="w1",
        device="cpu",
        once=True,
        spool_dir=tmp_path / "spool",
        entry_points=entry_points,
        grace_s=0.5,
    )
    display = QuietDisplay()
    return Worker(client, options, display), display


def test_a_job_runs_the_command_with_its_params_and_run_token(tmp_path: Path) -> None:
    queue = FakeQueue()
    worker, display = make_worker(tmp_path, RECORD, queue)
    worker.serve()
    digest = worker.options.entry_points["train"].digest
    registered = queue.registered["train"]
    assert (registered.digest, registered.worker_id) == (digest, "w1")
    assert [ref.model_dump() for ref in queue.claims[0].entry_points] == [
        {"name": "train", "digest": digest}
    ]
    seen = json.loads((tmp_path / "seen.json").read_text())
    assert seen["argv"] == ["--momentum=0.5", "--steps=40", "--amp=true", "--arch=cnn"]
    assert seen["cwd"] == str(tmp_path.resolve())
    env = seen["env"]
    assert env["MOMENTUM_TOKEN"] == env["MLFLOW_TRACKING_TOKEN"] == "run-token-7"
    assert env["MOMENTUM_URL"] == env["MLFLOW_TRACKING_URI"] == "http://svc"
    assert (env["MOMENTUM_RUN_ID"], env["MLFLOW_RUN_ID"], env["MOMENTUM_JOB_ID"]) == (
        "12",
        "12",
        "7",
    )
    assert json.loads(env["MOMENTUM_PARAMS"]) == PARAMS
    assert queue.reported() == ["complete"] and display.ended == [Outcome.completed]


def test_without_a_run_token_the_child_gets_no_token_at_all(tmp_path: Path) -> None:
    queue = FakeQueue(run_token=None)
    worker, _ = make_worker(tmp_path, RECORD, queue)
    worker.serve()
    env = json.loads((tmp_path / "seen.json").read_text())["env"]
    assert env["MOMENTUM_TOKEN"] is None and env["MLFLOW_TRACKING_TOKEN"] is None


def test_a_non_zero_exit_fails_the_job_with_the_code_and_the_stderr_tail(tmp_path: Path) -> None:
    queue = FakeQueue()
    worker, display = make_worker(tmp_path, EXIT_3, queue)
    worker.serve()
    [(kind, body)] = queue.outcomes
    assert kind == "fail" and isinstance(body, JobFail) and not body.cancelled
    assert body.error.startswith("exit code 3; last lines of stderr:\n")
    assert body.error.splitlines()[1:] == [f"problem {n}" for n in range(5, 25)]
    assert display.ended == [Outcome.failed]


def test_cancel_stops_the_child_after_the_grace_and_reports_cancelled(tmp_path: Path) -> None:
    queue = FakeQueue(last_step=5)
    pid_file = tmp_path / "child.pid"

    def cancel_once_running_with_progress() -> bool:
        return pid_file.exists() and any(b.step == 5 and b.total == 40 for b in queue.heartbeats)

    queue.heartbeat_reply = cancel_once_running_with_progress
    worker, display = make_worker(tmp_path, STUBBORN, queue)
    worker.serve()
    [(kind, body)] = queue.outcomes
    assert kind == "fail" and isinstance(body, JobFail) and body.cancelled
    assert not alive(int(pid_file.read_text()))
    assert display.ended == [Outcome.cancelled]


def test_a_lost_lease_kills_the_child_and_reports_nothing(tmp_path: Path) -> None:
    queue = FakeQueue()
    pid_file = tmp_path / "child.pid"
    queue.heartbeat_reply = lambda: 409 if pid_file.exists() else False
    worker, display = make_worker(tmp_path, STUBBORN, queue)
    worker.serve()
    assert queue.outcomes == [] and display.ended == [Outcome.lost]
    assert not alive(int(pid_file.read_text()))


def test_a_stopping_worker_ends_the_child_and_releases_the_job(tmp_path: Path) -> None:
    queue = FakeQueue()
    pid_file = tmp_path / "child.pid"
    worker, display = make_worker(tmp_path, POLITE, queue)

    def stop_once_running() -> bool:
        if pid_file.exists():
            worker.stop()  # what SIGTERM to the worker does
        return False

    queue.heartbeat_reply = stop_once_running
    worker.serve()
    assert queue.reported() == ["release"] and display.ended == [Outcome.released]
    wait_until(lambda: not alive(pid_in(pid_file)), timeout=10)


def test_a_malformed_momentum_toml_stops_the_worker_at_start(tmp_path: Path) -> None:
    bad = tmp_path / "momentum.toml"
    bad.write_text('[entry_points.train]\ncommand = ["x"]\ntotal_param = "nope"\n')
    result = CliRunner().invoke(main, ["worker", "--entry-points", str(bad), "--url", "http://x"])
    assert result.exit_code == 1
    assert f"{bad}: entry point 'train', field total_param" in result.output
