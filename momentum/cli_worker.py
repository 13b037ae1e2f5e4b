"""`momentum worker`: claim jobs from the service and train them, until told to stop.

The worker logic lives in `momentum.worker`; this module is the command, its signal
handling and how progress is shown: a rich progress bar on a terminal, concise log
lines otherwise (under `momentum up`, in containers, in logs). torch is imported inside
the command, so `momentum --help` and `momentum serve` never load it.
"""

from __future__ import annotations

import logging
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import click

from momentum.cli_common import as_service_error, connection_options_with
from momentum.cli_train import training_progress

if TYPE_CHECKING:
    from rich.console import Console

    from momentum.client import MomentumClient
    from momentum.entry_points import EntryPoint
    from momentum.worker import Lease, Outcome, Worker, WorkerOptions

log = logging.getLogger("momentum.worker")
ENDED = {
    "complete": "succeeded",
    "fail": "failed",
    "cancel": "cancelled",
    "release": "handed back to the queue",
    "lost": "abandoned: the lease was lost, another worker owns the job now",
}


def _describe(lease: Lease) -> str:
    job = lease.job
    if job.entry_point is not None:
        params = " ".join(f"{name}={value}" for name, value in (job.params or {}).items())
        return f"entry point {job.entry_point} {params}".rstrip()
    config = lease.config
    return (
        f"{config.framework} {config.optimizer} mu={config.momentum:g} lr={config.lr:g} "
        f"{config.dataset}/{config.model} seed={config.seed}"
    )


class LineDisplay:
    """Log lines: when a job starts, every few seconds of progress, when it ends."""

    EVERY_S = 5.0

    def __init__(self) -> None:
        self._shown_at = 0.0

    def job_started(self, lease: Lease) -> tuple[Any, Any]:
        steps = f", {lease.total} steps" if lease.total else ""
        log.info("job %s: training %s%s", lease.id, _describe(lease), steps)
        self._shown_at = time.monotonic()
        return None, None

    def job_progress(self, lease: Lease, step: int, total: int) -> None:
        now = time.monotonic()
        if now - self._shown_at >= self.EVERY_S:
            self._shown_at = now
            log.info("job %s: step %s/%s", lease.id, step, total)

    def job_ended(self, lease: Lease, outcome: Outcome, detail: str) -> None:
        log.info("job %s: %s (%s)", lease.id, ENDED[outcome.value], detail)

    def close(self) -> None:
        return None


class BarDisplay(LineDisplay):
    """A rich progress bar per job, with log lines printed above it."""

    def __init__(self, console: Console) -> None:
        super().__init__()
        self.progress = training_progress(console, "[bold]job {task.fields[job]}")
        self.progress.start()
        self._tasks: dict[int, Any] = {}

    def job_started(self, lease: Lease) -> tuple[Any, Any]:
        super().job_started(lease)
        total = lease.total or None  # an entry point without total_param: no bar length
        task = self.progress.add_task("", total=total, job=lease.id, loss="-")
        self._tasks[lease.id] = task
        return self.progress, task

    def job_progress(self, lease: Lease, step: int, total: int) -> None:
        # The sink draws a built-in job's bar as values are logged; an entry point's
        # moves with the step its run has logged.
        task = self._tasks.get(lease.id)
        if lease.job.entry_point is not None and task is not None:
            self.progress.update(task, completed=step, total=total or None)

    def job_ended(self, lease: Lease, outcome: Outcome, detail: str) -> None:
        task = self._tasks.pop(lease.id, None)
        if task is not None:
            self.progress.remove_task(task)
        super().job_ended(lease, outcome, detail)

    def close(self) -> None:
        self.progress.stop()


def _setup_display(worker_id: str, bar: bool) -> LineDisplay:
    if bar:
        from rich.console import Console
        from rich.logging import RichHandler

        console = Console(stderr=True)
        handler: logging.Handler = RichHandler(console=console, show_path=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
        display: LineDisplay = BarDisplay(console)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(f"%(asctime)s [{worker_id}] %(message)s"))
        display = LineDisplay()
    for name in ("momentum.worker", "momentum.client"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return display


def _stop_on_signals(worker: Worker) -> None:
    def handle(signum: int, _frame: FrameType | None) -> None:
        # A second signal ends the process at once (the default action).
        signal.signal(signum, signal.SIG_DFL)
        log.info(
            "%s: finishing the current step, then handing the job back",
            signal.Signals(signum).name,
        )
        worker.stop()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def _claim_device(device: str, frameworks: list[str]) -> str:
    if device == "cpu":
        return device
    has_cuda = False
    if "torch" in frameworks or "keras" in frameworks:
        import torch

        has_cuda = torch.cuda.is_available()
    if device == "auto":
        return "cuda" if has_cuda else "cpu"
    if not has_cuda:
        raise click.UsageError("--device cuda: CUDA is not available on this machine")
    return device


def _frameworks(given: str | None) -> list[str]:
    """The frameworks to claim jobs for: those given (each must be installed), else all found."""
    from trainer.frameworks import FRAMEWORKS, available_frameworks

    found: list[str] = list(available_frameworks())
    if given is None:
        return found
    wanted = [name.strip() for name in given.split(",") if name.strip()]
    for name in wanted:
        if name not in FRAMEWORKS:
            choices = ", ".join(FRAMEWORKS)
            raise click.BadParameter(f"{name!r} is not one of {choices}", param_hint="--frameworks")
        if name not in found:
            hint = " (pip install 'momentum-monitor[keras]')" if name == "keras" else ""
            raise click.BadParameter(
                f"{name!r} is not installed on this machine{hint}", param_hint="--frameworks"
            )
    if not wanted:
        raise click.BadParameter("name at least one framework", param_hint="--frameworks")
    return list(dict.fromkeys(wanted))


@click.command()
@connection_options_with("Bearer token, e.g. the worker token [default: $MOMENTUM_TOKEN].")
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    show_default=True,
    help="What this worker trains on; cuda workers also take cuda-only jobs.",
)
@click.option("--worker-id", help="Stable name in `momentum workers` [default: HOST-PID].")
@click.option("--once", is_flag=True, help="Train one job (waiting for it), then exit.")
@click.option("--threads", type=click.IntRange(min=1), help="torch CPU threads.")
@click.option(
    "--frameworks",
    help="Comma-separated frameworks to train: torch, numpy, keras [default: those installed].",
)
@click.option(
    "--entry-points",
    "entry_points_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The entry points to run (TOML) [default: ./momentum.toml if there is one].",
)
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    help="Seconds an entry point's child has to exit after SIGTERM before SIGKILL.",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bar (default when stderr is a terminal) or log lines.",
)
def worker(
    url: str | None,
    token: str | None,
    device: str,
    worker_id: str | None,
    once: bool,
    threads: int | None,
    frameworks: str | None,
    entry_points_file: Path | None,
    grace: float,
    progress: bool | None,
) -> None:
    """Claim queued jobs and train them; SIGTERM/Ctrl-C hands the current job back."""
    from momentum.client import MomentumClient
    from momentum.worker import WorkerOptions, default_worker_id

    entry_points = _entry_points(entry_points_file)
    claimed = _frameworks(frameworks)
    if threads is not None and ("torch" in claimed or "keras" in claimed):
        import torch  # Keras runs on torch here, so this bounds its threads too

        torch.set_num_threads(threads)
    worker_id = worker_id or default_worker_id()
    options = WorkerOptions(
        worker_id=worker_id,
        device=_claim_device(device, claimed),
        frameworks=claimed,
        once=once,
        entry_points=entry_points,
        grace_s=grace,
    )
    display = _setup_display(worker_id, sys.stderr.isatty() if progress is None else progress)
    with MomentumClient(url, token) as client:
        try:
            _serve(client, options, display)
        finally:
            display.close()
    log.info("worker %s stopped", worker_id)


def _entry_points(given: Path | None) -> dict[str, EntryPoint]:
    """momentum.toml's entry points; a malformed file stops the worker before it starts."""
    from momentum.entry_points import EntryPointFileError, find_entry_points

    try:
        return find_entry_points(given, Path.cwd())
    except EntryPointFileError as exc:
        raise click.ClickException(str(exc)) from None


def _serve(client: MomentumClient, options: WorkerOptions, display: LineDisplay) -> None:
    """Claim and train until stopped; a refusal by the service is a click error."""
    from pydantic import ValidationError

    from momentum.client import MomentumAPIError
    from momentum.worker import Worker

    try:
        runner = Worker(client, options, display)
        _stop_on_signals(runner)
        runs = [*options.frameworks, *(f"entry point {name}" for name in options.entry_points)]
        log.info(
            "worker %s (%s; %s) polling %s",
            options.worker_id,
            options.device,
            ", ".join(runs),
            client.url,
        )
        runner.serve()
    except (MomentumAPIError, ValidationError) as exc:
        # A ValidationError is what the service would refuse too: an over-long --worker-id.
        error = as_service_error(exc) if isinstance(exc, ValidationError) else exc
        raise click.ClickException(f"the service refused this worker: {error.message}") from exc
