"""`momentum up`: the service and N local workers in one command, on SQLite in a data dir.

The children are `momentum serve` and `momentum worker` processes. They run in their own
process group, so a Ctrl-C in the terminal reaches only this supervisor, which then
stops them in order: the workers first (each finishes its step, flushes its metrics and
hands its job back, which needs the service still up), then the service. A child that
outlives its grace period is killed. On Linux each child also gets SIGTERM if this
process dies without cleaning up (PR_SET_PDEATHSIG), so nothing is left behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType

import click
import httpx

WORKER_GRACE_S = 30.0  # a step, a metrics flush and a release
SERVICE_GRACE_S = 10.0
READY_TIMEOUT_S = 60.0
DEMO_SWEEP = {
    "name": "demo: momentum on digits",
    "base": {"dataset": "digits", "model": "mlp", "optimizer": "momentum", "steps": 1500},
    "grid": {"momentum": [0.0, 0.5, 0.9, 0.99], "seed": [0, 1]},
    "tags": {"demo": "true"},
}


def _die_with_parent() -> None:
    """Runs in the child before exec: get SIGTERM when the supervisor dies."""
    if sys.platform == "linux":
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Supervisor:
    """Starts, watches and stops the children of `momentum up`."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.service: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self.stop_requested = threading.Event()

    def spawn(self, *args: str) -> subprocess.Popen[bytes]:
        # -P: `-m` would put the working directory first on sys.path, and a project of the
        # user's with its own `service/` or `trainer/` would shadow ours (PYTHONPATH stays).
        argv = [sys.executable, "-P", "-m", "momentum.cli", *args]
        return subprocess.Popen(argv, env=self.env, process_group=0, preexec_fn=_die_with_parent)

    def wait_ready(self, url: str) -> None:
        """Poll /readyz until the service answers; fail if it exits or takes too long."""
        assert self.service is not None
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self.stop_requested.is_set():
            code = self.service.poll()
            if code is not None:
                raise click.ClickException(
                    f"momentum serve exited with code {code} (is the port already in use?)"
                )
            try:
                if httpx.get(f"{url}/readyz", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise click.ClickException(f"the service at {url} was not ready in time")
            self.stop_requested.wait(0.1)

    def watch(self) -> int:
        """Wait for a stop request (0) or a child that exits on its own (1)."""
        while not self.stop_requested.wait(0.5):
            for process in [self.service, *self.workers]:
                if process is not None and process.poll() is not None:
                    what = "the service" if process is self.service else "a worker"
                    click.echo(f"{what} exited with code {process.returncode}; stopping", err=True)
                    return 1
        return 0

    def stop(self) -> None:
        """Workers first (they hand their jobs back to the live service), then the service."""
        _terminate(self.workers, WORKER_GRACE_S)
        _terminate([self.service] if self.service is not None else [], SERVICE_GRACE_S)

    def on_signal(self, signum: int, _frame: FrameType | None) -> None:
        click.echo(f"\n{signal.Signals(signum).name}: stopping workers, then the service", err=True)
        self.stop_requested.set()


def _terminate(processes: list[subprocess.Popen[bytes]], grace_s: float) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + grace_s
    for process in processes:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _child_env(data_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["MOMENTUM_DATA_DIR"] = str(data_dir)
    env.pop("MOMENTUM_DATABASE_URL", None)  # `up` is the embedded SQLite shape
    # Spools of the local workers stay with the data, not in the user's cache.
    env.setdefault("MOMENTUM_SPOOL_DIR", str(data_dir / "spool"))
    return env


def _submit_demo(url: str) -> None:
    from momentum.client import MomentumAPIError, MomentumClient
    from momentum.contract import SweepCreate

    with MomentumClient(url) as client:
        try:
            sweep = client.create_sweep(SweepCreate.model_validate(DEMO_SWEEP))
        except (MomentumAPIError, httpx.HTTPError) as exc:
            click.echo(f"could not submit the demo sweep: {exc}", err=True)
            return
    click.echo(f"demo sweep {sweep.id}: {len(sweep.job_ids)} jobs queued")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to bind.")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(min=0))
@click.option(
    "--data-dir",
    default="./data",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Holds the SQLite database (and the workers' spools).",
)
@click.option("--demo", is_flag=True, help="Also submit a momentum sweep on digits.")
def up(host: str, port: int, workers: int, data_dir: Path, demo: bool) -> None:
    """Run the service and local workers; Ctrl-C stops them all."""
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    url = f"http://{local}:{port}"
    supervisor = Supervisor(_child_env(data_dir))
    signal.signal(signal.SIGINT, supervisor.on_signal)
    signal.signal(signal.SIGTERM, supervisor.on_signal)
    threads = str(max(1, (os.cpu_count() or 1) // max(1, workers)))
    code = 1
    try:
        supervisor.service = supervisor.spawn(
            "serve", "--host", host, "--port", str(port), "--upgrade", "--log-level", "warning"
        )
        supervisor.wait_ready(url)
        for index in range(workers):
            worker_id = f"{os.uname().nodename}-up{port}-{index + 1}"
            supervisor.workers.append(
                supervisor.spawn(
                    "worker",
                    "--url",
                    url,
                    "--worker-id",
                    worker_id,
                    "--threads",
                    threads,
                    "--no-progress",
                )  # fmt: skip
            )
        if not supervisor.stop_requested.is_set():
            click.echo(f"Momentum Monitor is up: {url}/  (API docs: {url}/docs)")
            click.echo(f"database: {data_dir / 'momentum.sqlite3'}; {workers} worker(s)")
            click.echo("press Ctrl-C to stop")
            if demo:
                _submit_demo(url)
        code = supervisor.watch()
    finally:
        supervisor.stop()
    sys.exit(code)
