"""`LogShipper`: a job's child output to the service as it comes, in the background.

The worker hands it each piece of its child's stdout and stderr; `write(text)` never
blocks (it appends to memory under a lock held for microseconds), and a thread sends
what gathered every `interval_s` (or as soon as `max_batch_bytes` are waiting) with
`POST /jobs/{id}/logs`, at the byte offset where the batch begins in this attempt's
output. A failed send is resent with the same offset and text, after the client side's
backoff (momentum/client/retry.py), until it is stored: a resend of what the service
already holds is a no-op there, so nothing is stored twice, and batches go in order, so
nothing is lost or reordered.

While the service is unreachable the text waits in memory, up to `max_pending_bytes`
(16 MiB, twice the service's default cap); past that the oldest waiting text is dropped
and a line saying how much takes its place. It is not spooled to a file: only the
lease's holder may append to a job's log, and the lease ends with this worker.

`close(timeout_s)` sends what is left (call it after the child exited and before the
job's complete or fail, so the log is whole when the job ends). Once the service
answers that the lease is no longer held (409), the shipper stops and drops the rest.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass

from momentum.client.http import MomentumAPIError, MomentumClient, is_retryable
from momentum.client.retry import Backoff

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 0.5
# JSON escapes a control character (an ANSI colour's ESC) as 6 bytes: a batch of at most
# 128 KiB stays under the service's 1 MiB body limit (MOMENTUM_MAX_SMALL_BODY_BYTES).
MAX_BATCH_BYTES = 128 * 1024
DEFAULT_MAX_PENDING_BYTES = 16 * 1024 * 1024
LEASE_LOST = "lease_not_held"


def clean(text: str) -> bytes:
    """UTF-8 the service can store: NUL (which no text column holds) and lone surrogates
    (which have no UTF-8) become replacement characters."""
    return text.replace("\x00", "\ufffd").encode("utf-8", "replace")


def char_end(data: bytes, at: int) -> int:
    """The last UTF-8 character boundary at or before byte `at`."""
    at = min(at, len(data))
    while 0 < at < len(data) and data[at] & 0xC0 == 0x80:
        at -= 1
    return at


@dataclass
class ShipperStats:
    sent_bytes: int = 0  # stored by the service (this attempt's offset)
    dropped_bytes: int = 0  # never sent: over the memory bound, refused, or lease lost
    failed_sends: int = 0  # sends that will be (or were) tried again
    lease_lost: bool = False


@dataclass(frozen=True)
class _Batch:
    offset: int
    data: bytes


class LogShipper:
    def __init__(
        self,
        client: MomentumClient,
        job_id: int,
        lease_token: str,
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        max_batch_bytes: int = MAX_BATCH_BYTES,
        max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES,
        backoff: Backoff | None = None,
    ) -> None:
        self.client, self.job_id, self.lease_token = client, job_id, lease_token
        self.interval_s, self.max_batch_bytes = interval_s, max_batch_bytes
        self.max_pending_bytes = max(max_pending_bytes, max_batch_bytes)
        self.backoff = backoff or Backoff(base=0.5, cap=10.0)
        self.stats = ShipperStats()
        self._pending: deque[bytes] = deque()
        self._pending_bytes = 0
        self._unreported_drop = 0  # dropped for the memory bound, not yet said in the log
        self._next_offset = 0
        self._closing = False
        self._abandoned = threading.Event()
        self._ready = threading.Condition()
        self._thread = threading.Thread(target=self._run, name=f"log-shipper-{job_id}", daemon=True)
        self._thread.start()

    def write(self, text: str) -> None:
        """Queue `text` to be sent; returns at once, whatever the service is doing."""
        data = clean(text)
        with self._ready:
            if self._closing or self.stats.lease_lost or not data:
                return
            self._pending.append(data)
            self._pending_bytes += len(data)
            self._bound_pending()
            if self._pending_bytes >= self.max_batch_bytes:
                self._ready.notify()

    def close(self, timeout_s: float = 10.0) -> bool:
        """Send what is left, for up to `timeout_s`; True when all of it was stored."""
        with self._ready:
            self._closing = True
            self._ready.notify()
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            self._abandoned.set()
            self._thread.join(1.0)
            return False
        return not self._pending and not self.stats.lease_lost and not self.stats.dropped_bytes

    def _bound_pending(self) -> None:
        """Past the memory bound, drop the oldest waiting text (the newest says most)."""
        while self._pending_bytes > self.max_pending_bytes:
            excess = self._pending_bytes - self.max_pending_bytes
            oldest = self._pending.popleft()
            cut = len(oldest)
            if cut > excess:  # only its front goes
                cut = _char_start(oldest, excess)
                self._pending.appendleft(oldest[cut:])
            self._pending_bytes -= cut
            self._unreported_drop += cut
            self.stats.dropped_bytes += cut

    def _run(self) -> None:
        while not self._abandoned.is_set():
            with self._ready:
                self._ready.wait_for(self._batch_due, timeout=self.interval_s)
                batch = self._cut()
                if batch is None:
                    if self._closing:
                        return
                    continue
            if not self._deliver(batch):
                return

    def _batch_due(self) -> bool:
        return self._closing or self._pending_bytes >= self.max_batch_bytes

    def _cut(self) -> _Batch | None:
        """The next batch, from the oldest waiting text; None when nothing waits."""
        if not self._pending:
            return None
        parts: list[bytes] = []
        if self._unreported_drop:
            note = f"[momentum: {self._unreported_drop} bytes of output dropped while "
            parts.append((note + "the service was unreachable]\n").encode())
            self._unreported_drop = 0
        room = self.max_batch_bytes - len(b"".join(parts))
        while self._pending and room > 0:
            piece = self._pending.popleft()
            cut = len(piece) if len(piece) <= room else char_end(piece, room)
            if cut == 0 and parts:
                self._pending.appendleft(piece)
                break
            cut = cut or len(piece)  # one character wider than the room: send it anyway
            parts.append(piece[:cut])
            if cut < len(piece):
                self._pending.appendleft(piece[cut:])
            self._pending_bytes -= cut
            room -= cut
        data = b"".join(parts)
        batch = _Batch(self._next_offset, data)
        self._next_offset += len(data)
        return batch

    def _deliver(self, batch: _Batch) -> bool:
        """Send until stored; False when the shipper must stop (lease lost, abandoned)."""
        self.backoff.reset()
        while not self._abandoned.is_set():
            try:
                self.client.append_job_log(
                    self.job_id, self.lease_token, batch.offset, batch.data.decode()
                )
            except Exception as exc:
                if is_retryable(exc):
                    self.stats.failed_sends += 1
                    self._abandoned.wait(self.backoff.next_delay())
                    continue
                return self._refused(batch, exc)
            self.stats.sent_bytes = batch.offset + len(batch.data)
            return True
        return False

    def _refused(self, batch: _Batch, exc: Exception) -> bool:
        """The service said no for good: a lost lease stops the shipper; anything else
        (a bug here, not the output's fault) drops this batch and keeps going."""
        with self._ready:
            self._next_offset = batch.offset  # nothing of it was stored
            self.stats.dropped_bytes += len(batch.data)
            if isinstance(exc, MomentumAPIError) and exc.code == LEASE_LOST:
                self.stats.lease_lost = True
                self.stats.dropped_bytes += self._pending_bytes
                self._pending.clear()
                self._pending_bytes = 0
                return False
        log.warning("job %s: a log batch was refused, dropped: %s", self.job_id, exc)
        return True


def _char_start(data: bytes, at: int) -> int:
    """The first UTF-8 character boundary at or after byte `at`."""
    while at < len(data) and data[at] & 0xC0 == 0x80:
        at += 1
    return min(at, len(data))
