"""Helpers shared by tests and benchmarks: free ports, a throwaway PostgreSQL, a live (and
restartable) server, polling for a condition."""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

APT_LINE = "apt-get update && apt-get install -y postgresql"
_scratch_numbers = itertools.count()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _postgres_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name) or ""]
    if not found[-1]:
        raise RuntimeError(f"PostgreSQL's {name} was not found; install it: {APT_LINE}")
    return found[-1]


def _as_postgres_user(argv: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; as root we run it as the `postgres` user.
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


class PostgresCluster:
    """A fresh cluster on a free loopback port, run as the `postgres` user when we are
    root (PostgreSQL refuses root). `url` names the server, not a database."""

    def __init__(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="momentum-pg-"))
        self.data, self.sockets = self.workdir / "data", self.workdir / "sock"
        self.log = self.workdir / "server.log"
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}"

    def init(self) -> None:
        self.sockets.mkdir()
        self.log.touch()
        if os.geteuid() == 0:
            for path in (self.workdir, self.sockets, self.log):
                shutil.chown(path, "postgres")
        initdb = [_postgres_bin("initdb"), "-D", str(self.data), "-U", "postgres"]
        self._run([*initdb, "--auth=trust", "-E", "UTF8"])

    def start(self) -> None:
        options = f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._pg_ctl("-o", options, "-l", str(self.log), "-w", "start")

    def restart(self) -> None:
        """A fast shutdown (every connection is cut) and a start on the same port."""
        self._pg_ctl("-m", "fast", "-w", "stop")
        self.start()

    def destroy(self) -> None:
        self._pg_ctl("-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _pg_ctl(self, *args: str, check: bool = True) -> None:
        self._run([_postgres_bin("pg_ctl"), "-D", str(self.data), *args], check=check)

    def _run(self, argv: list[str], check: bool = True) -> None:
        subprocess.run(_as_postgres_user(argv), check=check, capture_output=True)


@contextmanager
def postgres_cluster() -> Iterator[PostgresCluster]:
    cluster = PostgresCluster()
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


@contextmanager
def throwaway_postgres() -> Iterator[str]:
    """A fresh cluster on a free loopback port; yields a server URL without a database."""
    with postgres_cluster() as cluster:
        yield cluster.url


class ServerProcess:
    """`momentum serve` on a fixed loopback port that a test can stop and start again:
    the same URL and database across restarts, as a real outage looks to a client."""

    def __init__(
        self,
        env: dict[str, str],
        *,
        workers: int = 1,
        timeout: float = 30.0,
        port: int = 0,
        args: Sequence[str] = (),
    ) -> None:
        self.env = env
        self.args = list(args)  # more `momentum serve` options
        self.workers = workers
        self.timeout = timeout
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        """Start the server and wait until it is ready; returns its base URL."""
        if self.process is not None:
            raise RuntimeError("the server is already running")
        argv = [sys.executable, "-m", "momentum.cli", "serve", "--port", str(self.port)]
        argv += ["--workers", str(self.workers), "--log-level", "warning", *self.args]
        self.process = subprocess.Popen(argv, env={**os.environ, **self.env})
        try:
            wait_until_ready(self.url, self.process, self.timeout)
        except BaseException:
            self.stop()
            raise
        return self.url

    def stop(self) -> None:
        """Terminate the server (it finishes requests in flight) and wait for it to exit."""
        process, self.process = self.process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def kill(self) -> None:
        """SIGKILL: no shutdown, requests in flight are cut, as in a crash."""
        process, self.process = self.process, None
        if process is not None:
            process.kill()
            process.wait()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def live_server(env: dict[str, str], *, workers: int = 1, timeout: float = 30.0) -> Iterator[str]:
    """`momentum serve` as a real subprocess on a free loopback port; yields its base URL."""
    with ServerProcess(env, workers=workers, timeout=timeout) as server:
        yield server.start()


def wait_until_ready(base_url: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"momentum serve exited with {process.returncode}")
        try:
            if httpx.get(f"{base_url}/readyz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"momentum serve at {base_url} was not ready within {timeout} s")


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll `condition` until it holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.002)


@contextmanager
def scratch_postgres_database(
    server_url: str, prefix: str, template: str | None = None
) -> Iterator[str]:
    """A new database on the server (a copy of `template`, or empty), dropped afterwards."""
    from sqlalchemy import create_engine, text

    name = f"{prefix}_{os.getpid()}_{next(_scratch_numbers)}"
    admin = create_engine(f"{server_url}/postgres", isolation_level="AUTOCOMMIT")
    created_from = f" TEMPLATE {template}" if template else ""
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}{created_from}"))
    try:
        yield f"{server_url}/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()
