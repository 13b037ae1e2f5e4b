"""`momentum up` as a real process: it becomes ready, and SIGTERM leaves no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from momentum.contract.sweeps import expand_grid
from momentum.up import DEMO_SWEEP
from tests.support import free_port, wait_until

pytestmark = pytest.mark.e2e


def _parents() -> dict[int, int]:
    """pid -> parent pid of every live process."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            if fields[0] != "Z":
                parents[int(entry.name)] = int(fields[1])
    return parents


def descendants(pid: int) -> set[int]:
    parents, found, frontier = _parents(), set[int](), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    """Running (a zombie has ended: it only waits for its parent to read its status)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def mentioning(text: str) -> list[str]:
    """Command lines of live momentum processes that contain `text`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            line = " ".join(arg.decode(errors="replace") for arg in argv)
            if "momentum" in line and text in line and alive(int(entry.name)):
                found.append(line)
    return found


def _ready(url: str, process: subprocess.Popen[bytes]) -> bool:
    if process.poll() is not None:
        assert process.stderr is not None
        raise AssertionError(f"momentum up exited: {process.stderr.read().decode()[-2000:]}")
    try:
        ready = httpx.get(f"{url}/readyz", timeout=1).status_code == 200
        return ready and httpx.get(f"{url}/api/v1/workers", timeout=1).json()["total"] == 1
    except httpx.TransportError:
        return False


def decoy_project(directory: Path) -> Path:
    """A user's project whose own top-level packages share our names and must not load."""
    for name in ("service", "trainer", "migrations"):
        package = directory / name
        package.mkdir(parents=True)
        (package / "__init__.py").write_text(f"raise ImportError('the decoy {name} loaded')\n")
    return directory


def test_up_starts_service_and_workers_and_sigterm_stops_them_all(tmp_path: Path) -> None:
    """Run in a project with its own `service/` and `trainer/`: the children import ours."""
    port, data = free_port(), tmp_path / "data"
    project = decoy_project(tmp_path / "project")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOMENTUM_")}
    # -P here too: `-m` would put the decoys first for `up` itself (the `momentum` script
    # does not); what is tested is how `up` starts its children.
    argv = [sys.executable, "-P", "-m", "momentum.cli", "up", "--port", str(port)]
    argv += ["--workers", "1", "--data-dir", str(data)]
    process = subprocess.Popen(
        argv, env=env, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    children: set[int] = set()
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: _ready(url, process), timeout=60)  # the worker has claimed once
        children = descendants(process.pid)
        assert len(children) == 2, "one service and one worker"
        assert (data / "momentum.sqlite3").exists()
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=45)
        assert process.returncode == 0
        assert b"decoy" not in err
        assert f"{url}/" in out.decode() and f"{url}/docs" in out.decode()
        assert not [pid for pid in children if alive(pid)]
        assert mentioning(f"--port {port}") == [] and mentioning(f"127.0.0.1:{port}") == []
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for pid in children:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_the_demo_sweep_is_a_valid_momentum_grid() -> None:
    combos = expand_grid(DEMO_SWEEP["base"], DEMO_SWEEP["grid"], max_size=256)  # type: ignore[arg-type]
    assert sorted({config.momentum for _, config in combos}) == [0.0, 0.5, 0.9, 0.99]
    assert {(config.dataset, config.model) for _, config in combos} == {("digits", "mlp")}
    assert len(combos) == 8
