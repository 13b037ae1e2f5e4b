"""The worker: claim a job, train it while heartbeating its lease, report how it ended.

One job at a time. Metrics go through `momentum.Run` with `external_id="job-<id>"`, so
a job retried on another worker resumes the same run and, training being deterministic
for its seed, upserts identical points from step 0: no step is ever duplicated.

A background thread heartbeats the lease (reporting progress). Its reply can ask to
cancel, or to stop early (a sweep's rule, or `momentum jobs stop`): the trainer then
ends the step, flushes and completes, its summary saying `stopped_early`. At each of
the claim's `check_steps` (a sweep's rungs) the trainer also flushes the run's points
and heartbeats before going on, so the stop decision is made on the points of that
very step. A 409 means the lease was lost (it lapsed and the job was taken back), after
which this worker must stop at once and report nothing: someone else owns the job.
A stop request (SIGTERM/SIGINT) ends the current step, flushes the metrics and hands
the job back to the queue with `/release`.

An entry-point job (`job.entry_point`, declared in the worker's momentum.toml) runs the
user's command as a child process instead: `momentum.worker_entry`.

The trainer of the job's framework (torch, NumPy or Keras) is imported inside
`Worker.train`, so importing this module (as `momentum.cli` does) stays light.

A test hook, `MOMENTUM_HOLD_FILE` (docs/jobs.md): while the file it names exists, the
worker waits after each logged step (from the step the file holds, if it holds one),
heartbeating as usual, so a test sees a job mid-way however fast the machine trains.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from momentum.child import OutputHook
from momentum.client import MomentumAPIError, MomentumClient, Run
from momentum.client.retry import Backoff, Retrying
from momentum.client.spool import default_spool_dir
from momentum.contract import (
    Claim,
    JobComplete,
    JobFail,
    JobRelease,
    Status,
    TrainingConfig,
)
from momentum.entry_points import EntryPoint
from momentum.job_outcome import Outcome, OutcomeBody
from momentum.job_outcome import fail_text as _fail_text
from momentum.job_outcome import summary as _summary
from momentum.training import ReportingSink
from momentum.worker_entry import job_total, register_entry_points, run_entry_point_job
from momentum.worker_lease import LEASE_LOST, Heartbeat, Lease

if TYPE_CHECKING:
    from trainer.loop import TrainResult
    from trainer.results import RunHooks

log = logging.getLogger("momentum.worker")

HOLD_FILE_ENV = "MOMENTUM_HOLD_FILE"
HOLD_POLL_S = 0.05
# Reporting an outcome: a few tries while the service is away, then the lease lapses
# and the job reruns elsewhere.
REPORT_ATTEMPTS = 4
REPORT_BACKOFF_S = (0.5, 4.0)  # base, cap


def hold_file_from_environment() -> Path | None:
    """`MOMENTUM_HOLD_FILE`, read once per worker: unset, a step costs nothing more."""
    value = os.environ.get(HOLD_FILE_ENV)
    return Path(value) if value else None


UNREPORTED = "job %s: could not report %s; its lease will lapse and it will rerun"


@dataclass
class WorkerOptions:
    worker_id: str
    device: str  # what the worker claims with: "cpu" or "cuda"
    frameworks: list[str] = field(default_factory=lambda: ["torch"])
    once: bool = False
    poll_min_s: float = 0.1
    poll_max_s: float = 2.0
    flush_timeout_s: float = 20.0
    spool_dir: Path | None = None
    hold_file: Path | None = field(default_factory=hold_file_from_environment)
    # momentum.toml's entry points, by name; the child's output lines go to `on_output`.
    entry_points: dict[str, EntryPoint] = field(default_factory=dict)
    grace_s: float = 10.0  # SIGTERM to SIGKILL, for a cancelled or stopped child
    on_output: OutputHook | None = None


class Display(Protocol):
    """Where the worker shows what it does: a rich progress bar or plain log lines."""

    def job_started(self, lease: Lease) -> tuple[Any, Any]:
        """Returns the (progress, task) that `ReportingSink` draws the loss on, or Nones."""

    def job_progress(self, lease: Lease, step: int, total: int) -> None: ...

    def job_ended(self, lease: Lease, outcome: Outcome, detail: str) -> None: ...


class Worker:
    """Claims and trains jobs until `stop()` (or after one job with `once`)."""

    def __init__(self, client: MomentumClient, options: WorkerOptions, display: Display) -> None:
        self.client, self.options, self.display = client, options, display
        self.stopping = threading.Event()
        self.claim_body = Claim.model_validate(
            {
                "worker_id": options.worker_id,
                "device": options.device,
                "frameworks": options.frameworks,
                "entry_points": [entry.ref() for entry in options.entry_points.values()],
            }
        )

    def stop(self) -> None:
        """Ask the worker to finish the current step, hand its job back and return."""
        self.stopping.set()

    def serve(self) -> None:
        delay = self.options.poll_min_s
        registered = not self.options.entry_points
        while not self.stopping.is_set():
            if not registered:
                registered = register_entry_points(
                    self.client, self.options.entry_points, self.options.worker_id
                )
            lease = self.claim() if registered else None
            if lease is None:
                self.stopping.wait(delay)
                delay = min(self.options.poll_max_s, delay * 2)
                continue
            delay = self.options.poll_min_s
            if self.stopping.is_set():  # told to stop while the claim was in flight
                self.report(lease, Outcome.released, JobRelease(lease_token=lease.token))
                return
            self.work(lease)
            if self.options.once:
                return

    def claim(self) -> Lease | None:
        """A lease on the next job, or None when nothing is queued or the service is away."""
        try:
            claimed = self.client.claim(self.claim_body)
        except MomentumAPIError as exc:
            if not exc.retryable:
                raise  # a bad token or request: waiting will not fix it
            log.warning("claim failed: %s", exc)
            return None
        except httpx.TransportError as exc:
            log.warning("cannot reach %s: %s", self.client.url, exc)
            return None
        if claimed is None:
            return None
        job, total = claimed.job, job_total(claimed.job, self.options.entry_points)
        expires_at, run_token = claimed.lease_expires_at, claimed.run_token
        lease = Lease(job, claimed.lease_token, expires_at, run_token=run_token, total=total)
        lease.check_steps = list(claimed.check_steps)
        return lease

    def work(self, lease: Lease) -> Outcome:
        """Train the leased job with a heartbeat running, then report its outcome."""
        log.info("job %s: claimed (attempt %s)", lease.id, lease.job.attempts)
        heartbeat = Heartbeat(self.client, lease)
        heartbeat.start()
        try:
            outcome, detail, body = self.train(lease, heartbeat)
        finally:
            lease.done.set()
            heartbeat.join()
        if outcome is not Outcome.lost:
            self.report(lease, outcome, body)
        self.display.job_ended(lease, outcome, detail)
        return outcome

    def train(self, lease: Lease, heartbeat: Heartbeat) -> tuple[Outcome, str, OutcomeBody]:
        """Run the trainer into the job's run; (outcome, text for people, report body)."""
        if lease.job.entry_point is not None:
            return run_entry_point_job(self, lease)
        from trainer.frameworks import trainer_for

        config = lease.config
        train = trainer_for(config.framework)
        run = self._open_run(lease, config)
        bar, task = self.display.job_started(lease)
        sink = ReportingSink(run, bar, task)

        def should_stop() -> bool:
            ended = lease.lost.is_set() or lease.cancel.is_set() or lease.stop.is_set()
            return ended or self.stopping.is_set()

        def on_progress(step: int, total: int) -> None:
            lease.step, lease.total = step, total
            self.display.job_progress(lease, step, total)
            if self.options.hold_file is not None:
                self._hold(self.options.hold_file, step, should_stop)

        hooks: RunHooks = {"should_stop": should_stop, "on_progress": on_progress}
        if lease.check_steps:
            hooks["check_steps"] = lease.check_steps
            hooks["on_check"] = lambda step: self._check(lease, run, heartbeat, step)
        try:
            result = train(config, sink, **hooks)
        except Exception as exc:
            log.exception("job %s: training raised", lease.id)
            error = f"{type(exc).__name__}: {exc}"
            outcome = self._end(lease, run, Outcome.failed, Status.failed)
            return outcome, error, JobFail(lease_token=lease.token, error=_fail_text(error))
        return self._conclude(lease, run, result)

    def _check(self, lease: Lease, run: Run, heartbeat: Heartbeat, step: int) -> bool:
        """A check step: the run's points up to it delivered, then a heartbeat, before
        the next step; True when the job must end here (stopped, cancelled or lost)."""
        if not run.flush(self.options.flush_timeout_s):
            log.warning("job %s: points up to check step %s not delivered yet", lease.id, step)
        heartbeat.beat()
        return lease.stop.is_set() or lease.cancel.is_set() or lease.lost.is_set()

    def _hold(self, hold_file: Path, step: int, should_stop: Callable[[], bool]) -> None:
        """The test hook: wait while `hold_file` holds this step (it exists and names no
        step, or one at most `step`), unless the job must stop anyway."""
        while _holds(hold_file, step) and not should_stop():
            self.stopping.wait(HOLD_POLL_S)

    def _conclude(
        self, lease: Lease, run: Run, result: TrainResult
    ) -> tuple[Outcome, str, OutcomeBody]:
        done = f"{result.steps_done}/{lease.total} steps, final loss {result.final_loss:.4g}"
        if lease.stop.is_set() and not lease.lost.is_set():
            # Before cancel: the service takes a stop only without a cancel pending.
            outcome = self._end(lease, run, Outcome.completed, Status.succeeded, result.diverged)
            summary = {**_summary(result), "stopped_early": True}
            body = JobComplete(lease_token=lease.token, diverged=result.diverged, summary=summary)
            return outcome, f"stopped early: {done}", body
        if lease.cancel.is_set():
            outcome = self._end(lease, run, Outcome.cancelled, Status.cancelled)
            cancelled = JobFail(lease_token=lease.token, error="cancelled", cancelled=True)
            return outcome, done, cancelled
        if result.cancelled and not lease.lost.is_set():  # stopped for a shutdown
            released = self._end(lease, run, Outcome.released, None)
            return released, done, JobRelease(lease_token=lease.token)
        outcome = self._end(lease, run, Outcome.completed, Status.succeeded, result.diverged)
        body = JobComplete(
            lease_token=lease.token, diverged=result.diverged, summary=_summary(result)
        )
        return outcome, done + (", diverged" if result.diverged else ""), body

    def _open_run(self, lease: Lease, config: TrainingConfig) -> Run:
        spool_dir = self.options.spool_dir or default_spool_dir()
        run = Run(
            lease.job.name,
            config.model_dump(mode="json"),
            external_id=f"job-{lease.id}",
            client=self.client,
            # A spool file per worker: two workers on one machine never share a file,
            # even when a late worker and the job's new owner write the same run.
            spool_dir=spool_dir / _safe(self.options.worker_id),
        )
        return run.start()

    def _end(
        self,
        lease: Lease,
        run: Run,
        outcome: Outcome,
        status: Status | None,
        diverged: bool | None = None,
    ) -> Outcome:
        """Flush the run; the final status only for an outcome this worker will report."""
        timeout = self.options.flush_timeout_s
        if lease.lost.is_set():
            outcome, status = Outcome.lost, None
        if status is None:
            # Lost: the run belongs to the job's new owner. Released: `/release` sets the
            # run queued. Either way this worker must not write a status.
            unsent = run.close(timeout)
        else:
            unsent = run.finish(status, diverged=diverged or None, timeout=timeout)
        if unsent is not None:
            log.error("job %s: metrics not all delivered; kept in %s", lease.id, unsent)
        return outcome

    def report(self, lease: Lease, outcome: Outcome, body: OutcomeBody) -> None:
        """POST the outcome with the lease token; a few tries while the service is away."""
        path = "fail" if outcome is Outcome.cancelled else outcome.value

        def retrying(error: Exception, _delay: float) -> None:
            log.warning("job %s: %s failed (%s); retrying", lease.id, path, error)

        retry = Retrying(REPORT_ATTEMPTS, Backoff(*REPORT_BACKOFF_S), on_retry=retrying)
        try:
            retry(self._send_outcome, lease.id, body)
        except MomentumAPIError as exc:
            if exc.status_code == LEASE_LOST:
                log.warning("job %s: lease lost before reporting: %s", lease.id, exc.message)
            elif not exc.retryable:
                log.error("job %s: %s refused: %s", lease.id, path, exc)
            else:
                log.error(UNREPORTED, lease.id, path)
        except httpx.TransportError:
            log.error(UNREPORTED, lease.id, path)

    def _send_outcome(self, job_id: int, body: OutcomeBody) -> None:
        if isinstance(body, JobComplete):
            self.client.complete_job(job_id, body)
        elif isinstance(body, JobFail):
            self.client.fail_job(job_id, body)
        else:
            self.client.release_job(job_id, body)


def _holds(hold_file: Path, step: int) -> bool:
    try:
        text = hold_file.read_text().strip()
    except FileNotFoundError:
        return False
    return not text.isdigit() or step >= int(text)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name) or "worker"


def default_worker_id() -> str:
    import os
    import socket

    return f"{socket.gethostname()}-{os.getpid()}"
