"""The outbox: encoded records waiting to be sent, in memory while that is safe, else on disk.

One ordered sequence split over two places. The invariant that keeps it ordered: while
the spool holds anything, memory holds nothing. So a record goes to memory only when
the spool is empty, the service is up and the memory budget allows; otherwise whatever
is in memory moves to the spool first (it is older), then the record follows it. The
oldest record is therefore always the head of whichever place is non-empty, and the
sender acknowledges it there even if it moved from memory to disk while being sent.
"""

from __future__ import annotations

import threading
from collections import deque
from pathlib import Path

from momentum.client.spool import Record, Spool


class Outbox:
    """Shared by the encoder thread (`put`) and the sender thread (`peek`/`ack`)."""

    def __init__(self, spool: Spool, max_memory_bytes: int) -> None:
        self.spool = spool
        self.max_memory_bytes = max_memory_bytes
        self._memory: deque[Record] = deque()
        self._memory_bytes = 0
        self._down = False
        self._closed = False
        self._changed = threading.Condition()
        self.spooled_records = 0  # records ever written to disk (for stats and tests)
        self._acked = 0  # records ever acknowledged: what `wait_delivered` counts

    def put(self, record: Record) -> None:
        with self._changed:
            fits = self._memory_bytes + len(record.body) <= self.max_memory_bytes
            if self.spool.pending == 0 and not self._down and fits:
                self._memory.append(record)
                self._memory_bytes += len(record.body)
            else:
                self._spill_memory()
                self._to_spool(record)
            self._changed.notify_all()

    def peek(self, timeout: float) -> Record | None:
        """The oldest record, waiting up to `timeout` seconds for one to arrive."""
        with self._changed:
            if not self._memory and self.spool.pending == 0:
                self._changed.wait(timeout)
            if self._closed:
                return None
            return self._memory[0] if self._memory else self.spool.peek()

    def ack(self) -> None:
        """The oldest record was delivered (or is being dropped): remove it."""
        with self._changed:
            if self._closed:
                return  # a sender that outlived `close`: its record stays spooled
            if self._memory:
                self._memory_bytes -= len(self._memory.popleft().body)
            else:
                self.spool.advance()
            self._acked += 1
            self._changed.notify_all()

    def delivery_mark(self) -> int:
        """A mark that `wait_delivered` passes once every record put so far is acknowledged
        (records leave in order, so counting acknowledgements is enough)."""
        with self._changed:
            return self._acked + len(self._memory) + self.spool.pending

    def wait_delivered(self, mark: int, timeout: float) -> bool:
        """Wait up to `timeout` seconds for `mark` (see `delivery_mark`); True once passed."""
        with self._changed:
            return self._changed.wait_for(lambda: self._acked >= mark, max(0.0, timeout))

    def mark_down(self) -> None:
        """The service is unreachable: keep nothing in memory, spool what comes next."""
        with self._changed:
            self._down = True
            self._spill_memory()

    def mark_up(self) -> None:
        with self._changed:
            self._down = False

    def close(self) -> Path | None:
        """Move what memory holds to disk and close; the spool's path if records remain."""
        with self._changed:
            self._spill_memory()
            self._closed = True
            self._changed.notify_all()
            return self.spool.close()

    def wake(self) -> None:
        with self._changed:
            self._changed.notify_all()

    @property
    def pending(self) -> int:
        with self._changed:
            return len(self._memory) + self.spool.pending

    @property
    def memory_bytes(self) -> int:
        return self._memory_bytes

    def _spill_memory(self) -> None:
        while self._memory:
            self._to_spool(self._memory.popleft())
        self._memory_bytes = 0

    def _to_spool(self, record: Record) -> None:
        self.spool.append(record)
        self.spooled_records += 1
