"""`momentum.Run`: the SDK a training script uses.

    with momentum.Run(name="mlp-mu0.9", params={"momentum": 0.9}) as run:
        for step in range(steps):
            run.log(step, loss=loss, accuracy=accuracy)

The run is created in the background, idempotently (a client-made `external_id`), so a
script starts training at once even if the service is down. Leaving the block marks the
run `succeeded`, or `failed` if the block raised (the exception propagates).
"""

from __future__ import annotations

import atexit
import logging
import os
import time
import uuid
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from momentum.client.http import MomentumClient
from momentum.client.reporter import RESUMED, Reporter, ReporterOptions
from momentum.client.spool import UPDATE, Record, Spool, default_spool_dir, spool_path
from momentum.contract import RunCreate, RunUpdate, Status

log = logging.getLogger("momentum.client")
RUN_ID_ENV, JOB_ID_ENV = "MOMENTUM_RUN_ID", "MOMENTUM_JOB_ID"  # set for an entry point's child
_open_runs: weakref.WeakSet[Run] = weakref.WeakSet()


class _Refusing:
    """Stands in for the queue before `start` and after `finish`, so `log` needs no check."""

    def __init__(self, message: str) -> None:
        self.message = message

    def append(self, _entry: object) -> None:
        raise RuntimeError(self.message)

    def __len__(self) -> int:
        return 0


class Run:
    """One training run, reported to the service; use it as a context manager.

    `url`/`token` default to MOMENTUM_URL / MOMENTUM_TOKEN. `external_id` makes creation
    idempotent (default: a new uuid4); passing the id of an earlier run resumes it, and
    replays whatever that run left in its spool file. `client` (a MomentumClient), `http`
    (an httpx.Client, left open) or `transport` (tests use `httpx.MockTransport`) decide
    how requests travel. `spool_dir` defaults to MOMENTUM_SPOOL_DIR, else
    ~/.cache/momentum/spool. `options` tunes the reporter (see `ReporterOptions`).

    `run_id` attaches to an existing run instead of creating one; it defaults to
    MOMENTUM_RUN_ID when no `external_id` is given, which is how `momentum.Run()` inside
    an entry point's child writes the job's run. An attached run keeps its own name,
    project and params (the job's full params): those given here are not sent.
    """

    def __init__(
        self,
        name: str | None = None,
        params: Mapping[str, Any] | None = None,
        *,
        project: str = "default",
        tags: Mapping[str, str] | None = None,
        external_id: str | None = None,
        url: str | None = None,
        token: str | None = None,
        client: MomentumClient | None = None,
        http: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        spool_dir: str | Path | None = None,
        options: ReporterOptions | None = None,
        run_id: int | None = None,
    ) -> None:
        self.attach_to = run_id if run_id is not None or external_id else _run_id_from_env()
        self.external_id = external_id or _attached_external_id(self.attach_to)
        self._create = RunCreate(
            name=name,
            project=project,
            params=dict(params or {}),
            tags=dict(tags or {}),
            external_id=self.external_id,
        )
        self._owns_client = client is None
        self.client = client or MomentumClient(url, token, http=http, transport=transport)
        self.options = options or ReporterOptions()
        directory = Path(spool_dir) if spool_dir is not None else default_spool_dir()
        self.spool_path = spool_path(directory, self.external_id)
        self.reporter: Reporter | None = None
        self._queue: Any = _Refusing("start the run first: `with momentum.Run(...) as run:`")
        self._wake_at = 0
        self.status: Status | None = None
        self.unsent_path: Path | None = None

    def start(self) -> Run:
        """Start the background reporter (the `with` statement does this)."""
        if self.reporter is not None:
            raise RuntimeError("this run was already started")
        create = self._create.model_dump_json(exclude_none=True).encode()
        spool = Spool(self.spool_path, create)
        self.reporter = Reporter(self.client, create, spool, self.options, self.attach_to)
        if spool.pending:
            log.info("resuming run %s: replaying %s", self.external_id, self.spool_path)
            self.reporter.submit(Record(UPDATE, RESUMED))
        self._queue = self.reporter.queue
        self._wake_at = max(1, self.options.max_queue // 2)
        self.reporter.start()
        _open_runs.add(self)
        return self

    def log(self, step: int, values: Mapping[str, Any] | None = None, /, **metrics: Any) -> None:
        """Record metric values at `step`: `run.log(step, loss=l)` or `run.log(step, {"loss": l})`.

        Never waits on the network: the values are queued for the background reporter.
        NaN and ±Inf are fine (they arrive as such); values that are not numbers are
        dropped with a warning.
        """
        if values is None:
            values = metrics
        else:
            values = {**values, **metrics} if metrics else dict(values)
        queue = self._queue
        queue.append((step, time.time(), values))
        if len(queue) >= self._wake_at:
            assert self.reporter is not None
            self.reporter.nudge()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every value logged so far is stored by the service; False if
        `timeout` seconds (default: the options' `close_timeout`) passed first, the
        values then staying queued (spooled while the service is away). Training
        never needs it; a worker calls it where a decision reads the points."""
        if self.reporter is None or self.status is not None or isinstance(self._queue, _Refusing):
            return True  # not started, or finished: nothing more can be logged
        return self.reporter.flush(self.options.close_timeout if timeout is None else timeout)

    def log_at(self, step: int, wall_time: float, values: Mapping[str, Any]) -> None:
        """`log`, with the wall time the values were measured at (seconds since the epoch),
        for adapters whose callers pass one (TensorBoard's `walltime`)."""
        queue = self._queue
        queue.append((step, wall_time, dict(values)))
        if len(queue) >= self._wake_at:
            assert self.reporter is not None
            self.reporter.nudge()

    def update(self, **fields: Any) -> None:
        """Change the run (name, diverged, params, tags), in order with the values logged."""
        body = _update_body(**fields)
        if self.reporter is None or self.status is not None:
            raise RuntimeError("update() needs a started, unfinished run")
        self.reporter.submit(Record(UPDATE, body))

    def finish(
        self,
        status: Status | str = Status.succeeded,
        *,
        diverged: bool | None = None,
        timeout: float | None = None,
    ) -> Path | None:
        """Flush and set the final status; returns the spool path if values stay unsent."""
        if self.reporter is None or self.status is not None:
            raise RuntimeError("finish() needs a started, unfinished run")
        self.status = Status(status)
        fields: dict[str, Any] = {"status": self.status}
        if diverged is not None:
            fields["diverged"] = diverged
        self.reporter.submit(Record(UPDATE, _update_body(**fields)))
        self._queue = _Refusing("this run has finished")
        return self._close(timeout)

    def close(self, timeout: float | None = None) -> Path | None:
        """Flush and stop reporting without setting a status: for a process that hands
        the run on (a worker whose job went back to the queue). Returns the spool path
        if values stay unsent."""
        if self.reporter is None or self.status is not None:
            raise RuntimeError("close() needs a started, unfinished run")
        self._queue = _Refusing("this run was closed")
        return self._close(timeout)

    def _close(self, timeout: float | None) -> Path | None:
        assert self.reporter is not None
        _open_runs.discard(self)
        self.unsent_path = self.reporter.close(timeout)
        if self.unsent_path is not None:
            log.warning(
                "momentum: could not deliver everything to %s; the rest is saved in %s. "
                "Replay it with `momentum sync %s` (or run again with external_id=%r).",
                self.client.url,
                self.unsent_path,
                self.unsent_path,
                self.external_id,
            )
        if self._owns_client:
            self.client.close()
        return self.unsent_path

    @property
    def id(self) -> int | None:
        """The service's id for this run; None until the run has been created there."""
        reporter = self.reporter
        return reporter.run.id if reporter is not None and reporter.run is not None else None

    def wait_for_id(self, timeout: float) -> int | None:
        """Wait up to `timeout` seconds for the run to be created; its id or None."""
        if self.reporter is not None:
            self.reporter.run_ready.wait(timeout)
        return self.id

    def __enter__(self) -> Run:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        self.finish(Status.failed if exc_type is not None else Status.succeeded)


def _run_id_from_env() -> int | None:
    value = os.environ.get(RUN_ID_ENV, "").strip()
    if not value:
        return None
    if not value.isdigit():
        raise ValueError(f"{RUN_ID_ENV}={value!r} is not a run id")
    return int(value)


def _attached_external_id(run_id: int | None) -> str:
    """A new run's fresh id; for a job's run, the idempotency key the service gave it
    (`job-<id>`), so its spool file replays into the same run."""
    if run_id is None:
        return uuid.uuid4().hex
    job_id = os.environ.get(JOB_ID_ENV, "").strip()
    return f"job-{job_id}" if job_id.isdigit() else f"run-{run_id}"


def _update_body(**fields: Any) -> bytes:
    return RunUpdate(**fields).model_dump_json(exclude_unset=True).encode()


@atexit.register
def _flush_open_runs() -> None:
    """A script that never finished its run: send what was logged (status unchanged)."""
    for run in list(_open_runs):
        run._queue = _Refusing("the interpreter is exiting")
        run._close(run.options.close_timeout)
