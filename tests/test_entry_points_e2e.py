"""Entry points end to end: a real service, real `momentum worker` processes with a
momentum.toml, and a tiny entry-point script (`probe.py`, no torch) that logs through
`momentum.Run()` with no arguments.

- a momentum × seed sweep completes; each run holds the script's points and full params;
- a script that exits 3 fails its job with the stderr tail, and a retry reruns it;
- cancel ends the child within the grace (its PID gone) and the job is `cancelled`;
- SIGKILL of the worker leaves no child, and the lapsed lease re-queues the job.

The hanging script writes its PID to a file the test waits for: nothing depends on how
fast the machine is.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from momentum.entry_points import load_entry_points
from tests.support import wait_until
from tests.test_child_process import alive, pid_in
from tests.test_worker_e2e import (
    Workers,
    api,
    get_job,
    sqlite_server,
    wait_for_status,
    workers,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(sys.platform != "linux", reason="process groups, /proc"),
]
__all__ = ["api", "workers"]  # fixtures, used by name
LOG_CAP = 1024 * 1024  # the service's MOMENTUM_MAX_JOB_LOG_BYTES in these tests

PROBE = """
import argparse, os, signal, sys, time
import momentum

parser = argparse.ArgumentParser()
parser.add_argument("--momentum", type=float)
parser.add_argument("--seed", type=int)
parser.add_argument("--steps", type=int)
parser.add_argument("--mode")
args = parser.parse_args()
if args.mode == "fail":
    for n in range(30):
        print(f"trouble line {n}", file=sys.stderr)
    sys.exit(3)
if args.mode == "talk":  # a few lines, then waits for the test's go-ahead
    job = os.environ["MOMENTUM_JOB_ID"]
    for n in range(3):
        print(f"early line {n}", flush=True)
    open(f"talked-{job}", "w").close()
    while not os.path.exists(f"go-{job}"):
        time.sleep(0.05)
    print("last line", flush=True)
    sys.exit(0)
if args.mode == "flood":  # 50 MB of output between two marks
    line = "x" * 999 + "\\n"
    print("HEAD-MARK", flush=True)
    for _ in range(50_000):
        sys.stdout.write(line)
    print("TAIL-MARK", flush=True)
    sys.exit(0)
if args.mode == "hang":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # so only the SIGKILL after the grace ends it
    with open(f"pid-{os.environ['MOMENTUM_JOB_ID']}", "w") as out:
        out.write(str(os.getpid()))
    while True:
        time.sleep(1)
with momentum.Run() as run:
    for step in range(args.steps):
        run.log(step, loss=(1 - args.momentum) / (step + 1) + args.seed)
"""
TOML = """
[entry_points.probe]
command = [{python}, "probe.py"]
total_param = "steps"
[entry_points.probe.params]
momentum = {{ type = "float", default = 0.9, min = 0.0, max = 1.0 }}
seed = {{ type = "int", default = 0 }}
steps = {{ type = "int", default = 20, min = 1 }}
mode = {{ type = "str", default = "train", choices = ["train", "fail", "hang", "talk", "flood"] }}
"""
GRACE_S = 1.0


@pytest.fixture
def server(sqlite_template: Path, tmp_path: Path) -> Iterator[str]:
    """test_worker_e2e's service, with a 1 MiB cap on each job's log."""
    cap = {"MOMENTUM_MAX_JOB_LOG_BYTES": str(LOG_CAP)}
    with sqlite_server(sqlite_template, tmp_path, **cap) as url:
        yield url


def job_log(api: httpx.Client, job_id: object) -> tuple[str, bool]:
    """The job's whole log as the service keeps it, and whether its middle was dropped."""
    text, offset, truncated = [], 0, False
    while True:
        page = api.get(f"/jobs/{job_id}/logs", params={"offset": offset})
        assert page.status_code == 200, page.text
        body = page.json()
        text.append(body["text"])
        truncated = truncated or body["truncated"]
        if body["next_offset"] == offset:
            return "".join(text), truncated
        offset = body["next_offset"]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    directory = tmp_path / "project"
    directory.mkdir()
    (directory / "probe.py").write_text(textwrap.dedent(PROBE))
    (directory / "momentum.toml").write_text(TOML.format(python=json.dumps(sys.executable)))
    return directory


def start(workers: Workers, worker_id: str, project: Path) -> None:
    extra = ["--entry-points", str(project / "momentum.toml"), "--grace", str(GRACE_S)]
    workers.start(worker_id, extra=extra)


def submit(api: httpx.Client, **params: object) -> dict[str, object]:
    response = api.post("/jobs", json={"entry_point": "probe", "params": params})
    assert response.status_code == 201, response.text
    return response.json()


def registered(api: httpx.Client) -> bool:
    response = api.get("/entry-points")
    assert response.status_code == 200, response.text
    listed = response.json()
    items = listed["items"] if isinstance(listed, dict) else listed
    return any(item["name"] == "probe" for item in items)


def test_a_momentum_by_seed_sweep_completes_with_points_and_full_params(
    api: httpx.Client, workers: Workers, project: Path
) -> None:
    start(workers, "w-a", project)
    start(workers, "w-b", project)
    wait_until(lambda: registered(api), timeout=60)
    body = {
        "name": "mu",
        "entry_point": "probe",
        "grid": {"momentum": [0, 0.5, 0.9], "seed": [0, 1]},
    }
    sweep = api.post("/sweeps", json=body)
    assert sweep.status_code == 201, sweep.text
    sweep_id = sweep.json()["id"]
    wait_until(lambda: api.get(f"/sweeps/{sweep_id}").json()["status"] == "succeeded", 120)
    combos = set()
    for job_id in sweep.json()["job_ids"]:
        job = get_job(api, job_id)
        run = api.get(f"/runs/{job['run_id']}").json()
        assert run["status"] == "succeeded", workers.log_tails()
        params = run["params"]
        assert set(params) == {"momentum", "seed", "steps", "mode"}
        assert (params["steps"], params["mode"]) == (20, "train")
        combos.add((params["momentum"], params["seed"]))
        steps = api.get(f"/runs/{job['run_id']}/metrics/loss").json()["steps"]
        assert steps == list(range(20))
    assert combos == {(m, s) for m in (0, 0.5, 0.9) for s in (0, 1)}


def test_a_script_exiting_3_fails_with_its_stderr_tail_and_retry_reruns_it(
    api: httpx.Client, workers: Workers, project: Path
) -> None:
    start(workers, "w-a", project)
    wait_until(lambda: registered(api), timeout=60)
    created = submit(api, mode="fail")
    failed = wait_for_status(api, created["id"], "failed", timeout=60)
    assert failed["error"].startswith("exit code 3")
    assert "trouble line 29" in failed["error"] and "trouble line 10" in failed["error"]
    assert "trouble line 9\n" not in failed["error"]  # the last 20 lines only
    assert api.post(f"/jobs/{created['id']}/retry").status_code == 200
    again = wait_for_status(api, created["id"], "failed", timeout=60)
    assert again["attempts"] == 2


def test_cancel_ends_the_child_within_the_grace(
    api: httpx.Client, workers: Workers, project: Path
) -> None:
    start(workers, "w-a", project)
    wait_until(lambda: registered(api), timeout=60)
    created = submit(api, mode="hang")
    pid = pid_in(project / f"pid-{created['id']}")
    assert api.post(f"/jobs/{created['id']}/cancel").status_code == 200
    wait_for_status(api, created["id"], "cancelled", timeout=30)
    assert not alive(pid), "reported cancelled only once the child is gone"
    assert workers.processes["w-a"].poll() is None, "the worker goes on"


def test_a_sigkilled_worker_leaves_no_child_and_its_job_is_requeued(
    api: httpx.Client, workers: Workers, project: Path
) -> None:
    start(workers, "w-a", project)
    wait_until(lambda: registered(api), timeout=60)
    created = submit(api, mode="hang")
    pid = pid_in(project / f"pid-{created['id']}")
    workers.processes["w-a"].send_signal(signal.SIGKILL)
    workers.processes["w-a"].wait()
    wait_until(lambda: not alive(pid), timeout=10)
    job = wait_for_status(api, created["id"], "queued", timeout=30)
    assert job["lease_lapses"] == 1


def test_run_with_no_arguments_writes_the_run_named_by_momentum_run_id(
    api: httpx.Client, server: str, project: Path
) -> None:
    """What an entry point's child does, without the queue: `momentum.Run()` attaches to
    MOMENTUM_RUN_ID (creating no run) and keeps the run's params."""
    created = api.post("/runs", json={"name": "job-run", "params": {"momentum": 0.5}}).json()
    env = {**os.environ, "MOMENTUM_URL": server, "MOMENTUM_RUN_ID": str(created["id"])}
    env.pop("MOMENTUM_TOKEN", None)
    env["MOMENTUM_SPOOL_DIR"] = str(project / "spool")
    argv = [sys.executable, "probe.py", "--momentum=0.5", "--seed=0", "--steps=5", "--mode=train"]
    subprocess.run(argv, cwd=project, env=env, check=True, timeout=60)
    run = api.get(f"/runs/{created['id']}").json()
    assert (run["status"], run["params"], run["last_step"]) == ("succeeded", {"momentum": 0.5}, 4)
    assert api.get("/runs").json()["total"] == 1


def test_sigterm_to_the_worker_ends_the_child_and_releases_the_job(
    api: httpx.Client, workers: Workers, project: Path
) -> None:
    start(workers, "w-a", project)
    wait_until(lambda: registered(api), timeout=60)
    created = submit(api, mode="hang")  # ignores SIGTERM: ended by the SIGKILL after the grace
    pid = pid_in(project / f"pid-{created['id']}")
    workers.processes["w-a"].send_signal(signal.SIGTERM)
    assert workers.processes["w-a"].wait(timeout=30) == 0
    assert not alive(pid)
    job = get_job(api, created["id"])
    assert (job["status"], job["lease_lapses"]) == ("queued", 0), "handed back, not lapsed"
    assert "handed back to the queue" in workers.log("w-a")


def test_logs_arrive_while_the_child_runs_and_are_whole_after_it_ends(
    api: httpx.Client, workers: Workers, project: Path
) -> None:
    start(workers, "w-a", project)
    wait_until(lambda: registered(api), timeout=60)
    job_id = submit(api, mode="talk")["id"]
    wait_until(lambda: (project / f"talked-{job_id}").exists(), 60)
    wait_until(lambda: "early line 2" in job_log(api, job_id)[0], 30)
    assert get_job(api, job_id)["status"] == "running"  # held by the test, not by luck
    assert "last line" not in job_log(api, job_id)[0]
    (project / f"go-{job_id}").touch()
    wait_for_status(api, job_id, "succeeded", timeout=60)
    text, truncated = job_log(api, job_id)
    assert text == "early line 0\nearly line 1\nearly line 2\nlast line\n"
    assert not truncated


def test_a_child_printing_50_mb_keeps_the_head_and_the_tail_within_the_cap(
    api: httpx.Client, workers: Workers, project: Path
) -> None:
    start(workers, "w-a", project)
    wait_until(lambda: registered(api), timeout=60)
    job_id = submit(api, mode="flood")["id"]
    wait_for_status(api, job_id, "succeeded", timeout=180)
    text, truncated = job_log(api, job_id)
    assert truncated
    assert len(text.encode()) <= LOG_CAP
    assert text.startswith("HEAD-MARK\n") and text.endswith("TAIL-MARK\n")


def test_a_worker_whose_toml_changed_leaves_the_jobs_of_the_old_definition(
    api: httpx.Client, workers: Workers, project: Path, tmp_path: Path
) -> None:
    old = load_entry_points(project / "momentum.toml")["probe"]
    registered_old = api.put("/entry-points/probe", json=old.registration("w-old").model_dump())
    assert registered_old.status_code == 201, registered_old.text
    job_id = submit(api, steps=3)["id"]
    edited = tmp_path / "edited"
    shutil.copytree(project, edited)
    with (edited / "momentum.toml").open("a") as toml:
        toml.write('extra = { type = "int", default = 0 }\n')
    start(workers, "w-new", edited)
    polls = polled_claims(api, "w-new", 3)  # it asked for work three times, and got none
    assert polls and get_job(api, job_id)["status"] == "queued"
    start(workers, "w-old", project)
    job = wait_for_status(api, job_id, "succeeded", timeout=60)
    assert job["lease_owner"] == "w-old"


def polled_claims(api: httpx.Client, worker_id: str, times: int) -> bool:
    """Wait until `worker_id` has claimed (and been seen) `times` more times."""
    seen: list[str] = []

    def another_poll() -> bool:
        workers = {w["id"]: w for w in api.get("/workers").json()["items"]}
        last = workers.get(worker_id, {}).get("last_seen_at")
        if last is not None and last not in seen:
            seen.append(last)
        return len(seen) > times

    wait_until(another_poll, 60)
    return True
