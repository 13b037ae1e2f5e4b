"""An entry point's child process: its own process group, its output passed through and
watched, stopped politely (SIGTERM, a grace period, SIGKILL) or at once, and never left
behind by its worker.

No child outlives its worker, even one killed with SIGKILL, by two means that a small
launcher sets up before it execs the command (`python -I -c LAUNCHER`, never a shell;
no `preexec_fn`, which is unsafe in a process with threads, as the worker is):

- the parent-death signal (Linux `prctl(PR_SET_PDEATHSIG, SIGKILL)`): the command's own
  process dies the moment the worker's thread that started it does (the worker starts
  children from its main thread, which lives as long as the process);
- a watchdog: the launcher forks a tiny process into the child's group that blocks on a
  pipe whose only writer is the worker. When the worker dies (or closes the pipe after
  the child ended), the read returns and the watchdog SIGKILLs the whole group, so
  grandchildren (data-loader workers, a shell script's children) go too.

Output: each stdout/stderr line is written through to the worker's own stdout/stderr and
handed to `on_output(stream, line)` (the hook log shipping plugs into); the last
`STDERR_TAIL_LINES` of stderr are kept for the job's error.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO

log = logging.getLogger("momentum.worker")
STDERR_TAIL_LINES = 20
MAX_LINE_BYTES = 64 * 1024  # a longer "line" is passed on in pieces
PUMP_JOIN_S = 5.0
OutputHook = Callable[[str, bytes], None]  # ("stdout" | "stderr", one line with its \n)

# Runs as `python -I -c LAUNCHER FD WORKER_PID ARGV...` in the new session.
LAUNCHER = r"""
import ctypes, os, signal, sys
fd, worker, argv = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
try:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
except (AttributeError, OSError):
    pass  # not Linux: the watchdog alone covers it
if os.getppid() != worker:
    os._exit(137)  # the worker died before the signal was armed
if os.fork() == 0:
    null = os.open(os.devnull, os.O_RDWR)
    for std in (0, 1, 2):
        os.dup2(null, std)  # hold none of the child's pipes open
    try:
        while os.read(fd, 64):
            pass
    except OSError:
        pass
    os.killpg(0, signal.SIGKILL)
    os._exit(0)
os.close(fd)
try:
    os.execvp(argv[0], argv)
except OSError as exc:
    sys.stderr.write(f"momentum: cannot run {argv[0]!r}: {exc.strerror or exc}\n")
    os._exit(127)
"""


class Child:
    """One running entry-point command. `wait`, then `stop` or `kill` as needed."""

    def __init__(
        self,
        argv: list[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        on_output: OutputHook | None = None,
    ) -> None:
        self.argv = argv
        self.on_output = on_output
        self.stderr_tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        watch_read, self._watch_write = os.pipe()
        launcher = [sys.executable, "-I", "-c", LAUNCHER, str(watch_read), str(os.getpid())]
        try:
            self.process = subprocess.Popen(
                launcher + argv,
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # its own group: signals reach all it starts
                pass_fds=(watch_read,),
            )
        except BaseException:
            os.close(self._watch_write)
            raise
        finally:
            os.close(watch_read)
        assert self.process.stdout is not None and self.process.stderr is not None
        self._pumps = [
            self._pump("stdout", self.process.stdout, sys.stdout),
            self._pump("stderr", self.process.stderr, sys.stderr),
        ]

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait(self, timeout: float) -> int | None:
        """The return code once it has ended (negative: the signal), else None."""
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self._finish()
        return code

    def stop(self, grace_s: float) -> int:
        """SIGTERM to the group, `grace_s` seconds to end, then SIGKILL; the return code."""
        self._signal_group(signal.SIGTERM)
        code = self.wait(grace_s)
        if code is None:
            self.kill()
            code = self.process.wait()
        self._finish()
        return code

    def kill(self) -> None:
        """SIGKILL to the group now (its lease is lost: stop at once)."""
        self._signal_group(signal.SIGKILL)
        self.process.wait()
        self._finish()

    def _signal_group(self, signum: signal.Signals) -> None:
        try:
            os.killpg(self.process.pid, signum)
        except ProcessLookupError:
            pass  # the whole group has ended already

    def _finish(self) -> None:
        """The child ended: let the watchdog clear its group, read the output to its end."""
        if self._watch_write >= 0:
            os.close(self._watch_write)
            self._watch_write = -1
        for pump in self._pumps:
            # Bounded: a grandchild that left the group could hold a pipe open for ever.
            pump.join(PUMP_JOIN_S)

    def _pump(self, stream: str, source: IO[bytes], sink: IO[str]) -> threading.Thread:
        thread = threading.Thread(
            target=self._copy, args=(stream, source, sink), name=f"child-{stream}", daemon=True
        )
        thread.start()
        return thread

    def _copy(self, stream: str, source: IO[bytes], sink: IO[str]) -> None:
        with source:
            for line in iter(lambda: source.readline(MAX_LINE_BYTES), b""):
                text = line.decode("utf-8", errors="replace")
                if stream == "stderr":
                    self.stderr_tail.append(text.rstrip("\n"))
                try:
                    sink.write(text)
                    sink.flush()
                except (OSError, ValueError):
                    pass  # the worker's own output is gone; keep draining the child's
                if self.on_output is not None:
                    try:
                        self.on_output(stream, line)
                    except Exception:
                        log.exception("the output hook failed on a %s line", stream)


def describe_exit(code: int) -> str:
    """ "exit code 3" or "killed by SIGKILL"."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"
