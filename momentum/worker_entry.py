"""How the worker runs an entry-point job: the user's own command as a child process.

The command (`momentum.toml`, never the API) runs with the job's params as argv, in the
file's directory, with the job's run and its scoped run token in its environment (never
the worker's token). While it runs the worker heartbeats the lease (the `Heartbeat`
thread) and reads the run's last logged step as progress. How it ends:

- exit 0: complete; non-zero or a signal: fail with the exit code or signal and the
  last lines of stderr (attempts and retry as for any job);
- cancel requested: SIGTERM to the child's group, `grace_s`, SIGKILL; reported cancelled;
- stopped early (a sweep's rule, or `momentum jobs stop`): the same SIGTERM, grace and
  SIGKILL, then /complete whatever its exit code (its points up to then are the result),
  and the job's log says so;
- the worker told to stop (SIGTERM): the same, then the job is released to the queue;
- lease lost: SIGKILL at once, nothing reported (the job is someone else's now).

The run's status follows the job's on the service, so the worker writes none itself.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

import httpx
from pydantic import ValidationError

from momentum.child import Child, OutputHook, describe_exit
from momentum.client import MomentumAPIError, MomentumClient
from momentum.client.log_shipper import LogShipper
from momentum.contract import JobComplete, JobFail, JobPublic, JobRelease
from momentum.contract.common import StorableJsonValue
from momentum.entry_points import EntryPoint
from momentum.job_outcome import Outcome, OutcomeBody, fail_text

if TYPE_CHECKING:
    from momentum.worker import Lease, Worker

log = logging.getLogger("momentum.worker")
CHILD_POLL_S = 0.05  # how soon a cancel or a stop reaches the child
# How long the job's end waits for the last of its output to reach the service.
LOG_CLOSE_S = 10.0
# The worker's own credentials: a child gets its run token instead, or none.
CREDENTIAL_VARIABLES = frozenset(
    {
        "MOMENTUM_TOKEN",
        "MLFLOW_TRACKING_TOKEN",
        "MLFLOW_TRACKING_USERNAME",
        "MLFLOW_TRACKING_PASSWORD",
    }
)


def child_environment(
    base: Mapping[str, str], url: str, job: JobPublic, run_token: str | None
) -> dict[str, str]:
    """The worker's environment less its credentials, plus the job's run and token."""
    env = {name: value for name, value in base.items() if name not in CREDENTIAL_VARIABLES}
    run_id = "" if job.run_id is None else str(job.run_id)
    env.update(
        MOMENTUM_URL=url,
        MOMENTUM_RUN_ID=run_id,
        MOMENTUM_JOB_ID=str(job.id),
        MOMENTUM_PARAMS=json.dumps(job.params or {}),
        MLFLOW_TRACKING_URI=url,
        MLFLOW_RUN_ID=run_id,
    )
    if run_token:
        env["MOMENTUM_TOKEN"] = env["MLFLOW_TRACKING_TOKEN"] = run_token
    return env


def job_total(job: JobPublic, entry_points: Mapping[str, EntryPoint]) -> int:
    """Steps in all: the built-in config's, or the entry point's `total_param` value."""
    if job.config is not None:
        return job.config.steps
    entry = entry_points.get(job.entry_point or "")
    total_param = entry.definition.total_param if entry is not None else None
    value = (job.params or {}).get(total_param or "")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def register_entry_points(
    client: MomentumClient, entry_points: Mapping[str, EntryPoint], worker_id: str
) -> bool:
    """PUT each entry point; False if the service is away (try again later)."""
    try:
        for name, entry in entry_points.items():
            client.register_entry_point(name, entry.registration(worker_id))
            log.info("entry point %s registered (digest %s)", name, entry.digest[:12])
    except MomentumAPIError as exc:
        if not exc.retryable:
            raise
        log.warning("registering entry points failed: %s", exc)
        return False
    except httpx.TransportError as exc:
        log.warning("cannot reach %s to register entry points: %s", client.url, exc)
        return False
    return True


def run_entry_point_job(worker: Worker, lease: Lease) -> tuple[Outcome, str, OutcomeBody]:
    """Run the job's command to its end; (outcome, text for people, report body)."""
    job = lease.job
    entry = worker.options.entry_points.get(job.entry_point or "")
    if entry is None or job.entry_point_digest not in (None, entry.digest):
        error = f"this worker has no entry point {job.entry_point!r} with the job's digest"
        return Outcome.failed, error, JobFail(lease_token=lease.token, error=fail_text(error))
    params = job.params or {}
    env = child_environment(os.environ, worker.client.url, job, lease.run_token)
    worker.display.job_started(lease)
    argv = entry.argv(params)
    log.info("job %s: running %s in %s", job.id, argv, entry.directory)
    # The job's log (GET /jobs/{id}/logs) is whole before the job's outcome is reported.
    shipper = LogShipper(worker.client, job.id, lease.token)
    try:
        on_output = _shipping(shipper, worker.options.on_output)
        try:
            child = Child(argv, cwd=entry.directory, env=env, on_output=on_output)
        except OSError as exc:
            error = f"cannot start {entry.definition.command[0]!r}: {exc}"
            shipper.write(error + "\n")
            return Outcome.failed, error, JobFail(lease_token=lease.token, error=fail_text(error))
        return _supervise(worker, lease, child, shipper)
    finally:
        shipper.close(LOG_CLOSE_S)


def _shipping(shipper: LogShipper, also: OutputHook | None) -> OutputHook:
    """The child's output lines to the job's log, and to `also` (WorkerOptions.on_output)."""

    def on_output(stream: str, line: bytes) -> None:
        shipper.write(line.decode("utf-8", errors="replace"))
        if also is not None:
            also(stream, line)

    return on_output


def _supervise(
    worker: Worker, lease: Lease, child: Child, shipper: LogShipper
) -> tuple[Outcome, str, OutcomeBody]:
    """Wait for the child, acting on a lost lease, a cancel or a stop as soon as it comes."""
    started = time.monotonic()
    next_poll = started
    while (code := child.wait(CHILD_POLL_S)) is None:
        if lease.lost.is_set():
            child.kill()
            return Outcome.lost, "lease lost: child killed", JobRelease(lease_token=lease.token)
        if lease.stop.is_set():
            return _stop_early(worker, lease, child, shipper, time.monotonic() - started)
        if lease.cancel.is_set() or worker.stopping.is_set():
            cancelled = lease.cancel.is_set()
            code = child.stop(worker.options.grace_s)
            return _stopped(lease, cancelled, describe_exit(code))
        if time.monotonic() >= next_poll:
            next_poll = time.monotonic() + lease.heartbeat_interval()
            _poll_progress(worker, lease)
    if lease.lost.is_set():
        return Outcome.lost, describe_exit(code), JobRelease(lease_token=lease.token)
    return _ended(lease, child, code, time.monotonic() - started)


def _stop_early(
    worker: Worker, lease: Lease, child: Child, shipper: LogShipper, elapsed_s: float
) -> tuple[Outcome, str, OutcomeBody]:
    """Stopped early: SIGTERM, its grace, SIGKILL; then complete, whatever it exited with."""
    grace = worker.options.grace_s
    shipper.write(f"momentum: job stopped early at step {lease.step}: SIGTERM, {grace:g} s grace\n")
    how = describe_exit(child.stop(grace))
    shipper.write(f"momentum: stopped early: command ended ({how}); completing the job\n")
    summary: dict[str, StorableJsonValue] = {
        "stopped_early": True,
        "exit": how,
        "elapsed_s": round(elapsed_s, 3),
    }
    body = JobComplete(lease_token=lease.token, summary=summary)
    return Outcome.completed, f"stopped early: child {how}", body


def _stopped(lease: Lease, cancelled: bool, how: str) -> tuple[Outcome, str, OutcomeBody]:
    if cancelled:
        body = JobFail(lease_token=lease.token, error="cancelled", cancelled=True)
        return Outcome.cancelled, f"cancelled: child {how}", body
    return Outcome.released, f"stopping: child {how}", JobRelease(lease_token=lease.token)


def _ended(
    lease: Lease, child: Child, code: int, elapsed_s: float
) -> tuple[Outcome, str, OutcomeBody]:
    how = describe_exit(code)
    if code == 0:
        summary: dict[str, StorableJsonValue] = {"exit_code": 0, "elapsed_s": round(elapsed_s, 3)}
        return Outcome.completed, how, JobComplete(lease_token=lease.token, summary=summary)
    tail = "\n".join(child.stderr_tail)
    error = f"{how}; last lines of stderr:\n{tail}" if tail else f"{how} (no stderr)"
    return Outcome.failed, how, JobFail(lease_token=lease.token, error=fail_text(error))


def _poll_progress(worker: Worker, lease: Lease) -> None:
    """The run's last logged step is the job's progress (capped at its total)."""
    if lease.job.run_id is None:
        return
    try:
        last_step = worker.client.get_run(lease.job.run_id).last_step
    except (MomentumAPIError, httpx.HTTPError, ValidationError) as exc:
        # Progress is for show: a failed read must never stop the job.
        log.debug("job %s: cannot read its run's progress: %s", lease.id, exc)
        return
    if last_step is None:
        return
    lease.step = min(last_step, lease.total) if lease.total else last_step
    worker.display.job_progress(lease, lease.step, lease.total)
