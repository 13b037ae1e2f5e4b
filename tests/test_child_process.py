"""An entry point's child, as real processes: its exit and stderr tail, its output lines,
SIGTERM then SIGKILL to its whole group, and no child (nor grandchild) left behind when
its worker is SIGKILLed. Each test waits for the scripts' own "ready" files, never on
how fast the machine is."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from momentum.child import Child, describe_exit
from tests.support import wait_until

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="process groups, /proc")

# Ignores SIGTERM (after saying so), starts a grandchild in its group, then waits forever.
STUBBORN = """
import os, signal, subprocess, sys, time
from pathlib import Path
here = Path(sys.argv[1])
signal.signal(signal.SIGTERM, signal.SIG_IGN)
grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
(here / "grandchild.pid").write_text(str(grandchild.pid))
(here / "child.pid").write_text(str(os.getpid()))
while True:
    time.sleep(1)
"""
# Ends cleanly on SIGTERM.
POLITE = """
import os, signal, sys, time
from pathlib import Path
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
Path(sys.argv[1], "child.pid").write_text(str(os.getpid()))
while True:
    time.sleep(1)
"""
FAILING = """
import sys
print("to stdout")
for line in range(30):
    print(f"err {line}", file=sys.stderr)
sys.exit(3)
"""


def alive(pid: int) -> bool:
    """Running (a zombie, waiting for a reaper that is not ours, counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def script(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def pid_in(path: Path) -> int:
    wait_until(lambda: path.exists() and path.read_text().strip() != "", timeout=30)
    return int(path.read_text())


def test_a_failing_child_gives_its_exit_code_and_stderr_tail(tmp_path: Path) -> None:
    lines: list[tuple[str, bytes]] = []
    argv = [sys.executable, str(script(tmp_path, "fail.py", FAILING))]
    child = Child(
        argv, cwd=tmp_path, env=dict(os.environ), on_output=lambda s, b: lines.append((s, b))
    )
    code = child.wait(60)
    assert code == 3 and describe_exit(code) == "exit code 3"
    assert list(child.stderr_tail) == [f"err {n}" for n in range(10, 30)]
    assert ("stdout", b"to stdout\n") in lines
    assert [b for s, b in lines if s == "stderr"][-1] == b"err 29\n"


def test_a_missing_command_fails_with_127_and_says_why(tmp_path: Path) -> None:
    child = Child(["no-such-command-here"], cwd=tmp_path, env=dict(os.environ))
    assert child.wait(60) == 127
    assert "cannot run 'no-such-command-here'" in child.stderr_tail[-1]


def test_the_child_runs_in_its_directory_with_the_environment_given(tmp_path: Path) -> None:
    code = "import os; print(os.getcwd(), os.environ.get('ONLY_THIS'), os.environ.get('HOME'))"
    lines: list[bytes] = []
    env = {"PATH": os.environ["PATH"], "ONLY_THIS": "yes"}
    child = Child(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, on_output=lambda _, b: lines.append(b)
    )
    assert child.wait(60) == 0
    assert lines == [f"{tmp_path} yes None\n".encode()]


def test_stop_sends_sigterm_and_a_polite_child_ends(tmp_path: Path) -> None:
    child = Child(
        [sys.executable, str(script(tmp_path, "polite.py", POLITE)), str(tmp_path)],
        cwd=tmp_path,
        env=dict(os.environ),
    )
    pid = pid_in(tmp_path / "child.pid")
    assert child.stop(grace_s=60) == 0
    assert not alive(pid)


def test_stop_kills_a_child_that_ignores_sigterm_after_the_grace_and_its_group(
    tmp_path: Path,
) -> None:
    argv = [sys.executable, str(script(tmp_path, "stubborn.py", STUBBORN)), str(tmp_path)]
    child = Child(argv, cwd=tmp_path, env=dict(os.environ))
    pid, grandchild = pid_in(tmp_path / "child.pid"), pid_in(tmp_path / "grandchild.pid")
    assert os.getpgid(pid) == child.pid != os.getpgid(0)  # its own group
    code = child.stop(grace_s=0.5)
    assert code == -signal.SIGKILL and describe_exit(code) == "killed by SIGKILL"
    wait_until(lambda: not alive(pid) and not alive(grandchild), timeout=10)


def test_kill_ends_the_group_at_once(tmp_path: Path) -> None:
    argv = [sys.executable, str(script(tmp_path, "stubborn.py", STUBBORN)), str(tmp_path)]
    child = Child(argv, cwd=tmp_path, env=dict(os.environ))
    grandchild = pid_in(tmp_path / "grandchild.pid")
    child.kill()
    assert child.process.returncode == -signal.SIGKILL
    wait_until(lambda: not alive(grandchild), timeout=10)


WORKER = """
import os, sys
from pathlib import Path
from momentum.child import Child
here = Path(sys.argv[1])
argv = [sys.executable, str(here / "stubborn.py"), str(here)]
child = Child(argv, cwd=here, env=dict(os.environ))
child.wait(3600)
"""


def test_no_child_or_grandchild_outlives_a_sigkilled_worker(tmp_path: Path) -> None:
    script(tmp_path, "stubborn.py", STUBBORN)
    worker = subprocess.Popen(
        [sys.executable, str(script(tmp_path, "worker.py", WORKER)), str(tmp_path)]
    )
    try:
        pid, grandchild = pid_in(tmp_path / "child.pid"), pid_in(tmp_path / "grandchild.pid")
        assert alive(pid) and alive(grandchild)
        worker.kill()
        worker.wait()
        wait_until(lambda: not alive(pid) and not alive(grandchild), timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
