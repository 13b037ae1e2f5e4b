"""The reporter: moves logged values to the service on two background threads.

    training ─deque─▶ encoder thread ─outbox (memory | spool file)─▶ sender thread ─▶ HTTP

- The training thread only appends `(step, wall_time, values)` to a deque: no lock, no
  encoding, no I/O. Only if it outruns the encoder by `max_queue` entries does it wait,
  and then on the encoder (CPU and local disk), never on the network.
- The encoder thread wakes every `flush_interval` seconds (or when the deque is half
  full), cuts the entries into batches of at most `batch_points` points, encodes them
  and hands them to the outbox. It never touches the network, so the deque stays small
  however long the service is away.
- The sender thread creates the run (idempotently, by `external_id`), then sends the
  outbox's records oldest first. A failure that may pass (network, 5xx, 429) marks the
  service down, which sends new records to the spool file, and retries with exponential
  backoff and full jitter (`momentum.client.retry`). Resending is safe: the service
  upserts on (run, key, step). It also sends heartbeats while the service is up.
- `close` drains the deque, then gives the sender until a deadline; what is still unsent
  then stays in the spool file, whose path `close` returns.
- `flush` waits, without closing, until everything logged before it was delivered: a
  barrier in the deque tells the encoder where "before" ends in the outbox.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from momentum.client.encoding import BatchEncoder, Entry
from momentum.client.http import MomentumAPIError, MomentumClient
from momentum.client.outbox import Outbox
from momentum.client.retry import Backoff
from momentum.client.spool import POINTS, UPDATE, Record, Spool
from momentum.contract import RunPublic, Status

log = logging.getLogger("momentum.client")

CONTROL: Any = object()  # marks a deque entry that carries a record, not logged values
RESUMED = b'{"status":"running"}'
_AUTH_STATUSES = frozenset({401, 403})


@dataclass(frozen=True)
class ReporterOptions:
    batch_points: int = 5_000  # most points per request
    flush_interval: float = 0.5  # seconds between encoder wake-ups
    max_queue: int = 20_000  # logged entries held in memory before `log` waits
    max_memory_bytes: int = 8 * 1024 * 1024  # encoded batches held in memory before spooling
    heartbeat_interval: float = 30.0
    heartbeat_timeout: float = 5.0
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    close_timeout: float = 30.0


@dataclass
class _Barrier:
    """`flush`'s place in the deque: the encoder sets the outbox's mark at it."""

    encoded: threading.Event
    mark: int = 0


@dataclass
class ReporterStats:
    points_encoded: int = 0
    points_sent: int = 0
    batches_sent: int = 0
    send_failures: int = 0
    points_rejected: int = 0  # refused by the service (4xx) or invalid before sending
    max_queue_seen: int = 0  # deepest the deque was when the encoder drained it
    heartbeats: int = 0
    # CPU seconds each background thread used in all (set when it ends): what reporting
    # costs the training process beyond the `log` calls themselves.
    encoder_cpu_s: float = 0.0
    sender_cpu_s: float = 0.0


class Reporter:
    """Owns the queue, the two threads and the outbox of one run."""

    def __init__(
        self,
        client: MomentumClient,
        create: bytes,
        spool: Spool,
        options: ReporterOptions,
        attach_to: int | None = None,
    ) -> None:
        self.client = client
        self.attach_to = attach_to  # an existing run to write, instead of creating one
        self.options = options
        self.queue: deque[Entry] = deque()
        self.outbox = Outbox(spool, options.max_memory_bytes)
        self.stats = ReporterStats()
        self.run: RunPublic | None = None
        self.run_ready = threading.Event()
        self._create = create
        self._encoder = BatchEncoder()
        self._wake = threading.Event()
        self._room = threading.Event()
        self._interrupt = threading.Event()
        self._encoded_all = threading.Event()
        self._closing = False
        self._deadline = float("inf")
        self._blocked: MomentumAPIError | None = None
        self._next_heartbeat = 0.0
        self._threads = [
            threading.Thread(target=self._encode_loop, name="momentum-encoder", daemon=True),
            threading.Thread(target=self._send_loop, name="momentum-sender", daemon=True),
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def submit(self, record: Record) -> None:
        """Queue a record (a run update) behind everything logged so far."""
        self.queue.append((CONTROL, 0.0, {"record": record}))
        self._wake.set()

    def nudge(self) -> None:
        """Called by `log` when the deque is half full: wake the encoder, wait if full."""
        self._wake.set()
        while len(self.queue) >= self.options.max_queue:
            if not self._threads[0].is_alive():
                log.error("the momentum encoder thread is gone; dropping queued values")
                self.queue.clear()
                return
            self._room.clear()
            self._wake.set()
            self._room.wait(0.1)

    def flush(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds until every value logged before this call was
        delivered (stored by the service, or refused by it); True if it was."""
        deadline = time.monotonic() + timeout
        barrier = _Barrier(threading.Event())
        self.queue.append((CONTROL, 0.0, {"barrier": barrier}))
        self._wake.set()
        if not barrier.encoded.wait(timeout):
            return False
        return self.outbox.wait_delivered(barrier.mark, deadline - time.monotonic())

    def close(self, timeout: float | None = None) -> Path | None:
        """Flush within `timeout` seconds; returns the spool path if anything is left."""
        timeout = self.options.close_timeout if timeout is None else timeout
        self._closing = True
        self._wake.set()
        self._threads[0].join()  # CPU and disk only: bounded by the deque's size
        self._deadline = time.monotonic() + timeout
        self._interrupt.set()
        self.outbox.wake()
        # A request in flight is bounded by its own timeout (see `_timeout`).
        self._threads[1].join(timeout + 2 * self.options.heartbeat_timeout)
        return self.outbox.close()

    # The encoder thread.

    def _encode_loop(self) -> None:
        try:
            while True:
                self._wake.wait(self.options.flush_interval)
                self._wake.clear()
                closing = self._closing  # read first: all that was queued before is drained
                self._drain()
                if closing:
                    return
        except Exception:
            log.exception("the momentum encoder thread failed")
        finally:
            self.stats.encoder_cpu_s = time.thread_time()
            self._encoded_all.set()
            self.outbox.wake()

    def _drain(self) -> None:
        queue, limit = self.queue, self.options.batch_points
        self.stats.max_queue_seen = max(self.stats.max_queue_seen, len(queue))
        chunk: list[Entry] = []
        points = 0
        while queue:
            entry = queue.popleft()
            if entry[0] is CONTROL:
                self._emit(chunk)
                chunk, points = [], 0
                self._control(entry[2])
                continue
            chunk.append(entry)
            points += len(entry[2])
            if points >= limit:
                self._emit(chunk)
                chunk, points = [], 0
        self._emit(chunk)

    def _control(self, control: Mapping[str, Any]) -> None:
        barrier = control.get("barrier")
        if barrier is None:
            self.outbox.put(control["record"])
            return
        barrier.mark = self.outbox.delivery_mark()
        barrier.encoded.set()

    def _emit(self, chunk: list[Entry]) -> None:
        self._room.set()
        if not chunk:
            return
        before = self._encoder.dropped_points
        body, count = self._encoder.encode(chunk)
        self.stats.points_rejected += self._encoder.dropped_points - before
        if count:
            self.stats.points_encoded += count
            self.outbox.put(Record(POINTS, body, count))

    # The sender thread.

    def _send_loop(self) -> None:
        backoff = Backoff(self.options.backoff_base, self.options.backoff_max)
        try:
            while not self._past_deadline():
                if self._encoded_all.is_set() and self.outbox.pending == 0:
                    return
                if self._blocked is not None:
                    if self._closing:
                        return  # nothing will change before the deadline: spool the rest now
                    self._pause(self.options.flush_interval)
                elif self.run is None:
                    self._attempt(None, backoff)
                else:
                    record = self.outbox.peek(timeout=self._idle_wait())
                    if record is None or self._attempt(record, backoff):
                        self._maybe_heartbeat()
        except Exception:
            log.exception("the momentum sender thread failed; unsent values stay spooled")
        finally:
            self.stats.sender_cpu_s = time.thread_time()

    def _attempt(self, record: Record | None, backoff: Backoff) -> bool:
        """Deliver the oldest record (None: just create the run) once; True on success."""
        try:
            if self.run is None:
                self._create_run()
            if record is not None:
                self._deliver(record)
        except Exception as exc:
            return self._failed(record, exc, backoff)
        if record is not None:
            self.outbox.ack()
        self.outbox.mark_up()
        backoff.reset()
        return True

    def _deliver(self, record: Record) -> None:
        assert self.run is not None
        if record.kind == POINTS:
            self.client.log_points(self.run.id, record.body, timeout=self._timeout())
            self.stats.points_sent += record.points
            self.stats.batches_sent += 1
        elif record.kind == UPDATE:
            path = f"/runs/{self.run.id}"
            self.client.request("PATCH", path, content=record.body, timeout=self._timeout())

    def _failed(self, record: Record | None, exc: Exception, backoff: Backoff) -> bool:
        if not isinstance(exc, MomentumAPIError) or exc.retryable:
            # The network, a restarting service, or a garbled answer from a proxy: later.
            self.stats.send_failures += 1
            self.outbox.mark_down()
            delay = backoff.next_delay()
            log.debug("momentum service unreachable (%r); retrying in %.2f s", exc, delay)
            self._pause(delay)
            return False
        if record is None or exc.status_code in _AUTH_STATUSES:
            # Without a run, or refused outright: retrying cannot help and dropping would
            # lose points, so everything waits in the spool for `momentum sync`.
            self._blocked = exc
            self.outbox.mark_down()
            log.error("the momentum service refused this run (%s); values are spooled", exc)
            return False
        log.error("the momentum service rejected a %s record, dropped: %s", record.kind, exc)
        self.stats.points_rejected += record.points
        self.outbox.ack()
        return True

    def _create_run(self) -> None:
        if self.attach_to is not None:
            # A job's run, made by the service: a run token may write it, not create runs.
            run, created = self.client.get_run(self.attach_to, timeout=self._timeout()), False
        else:
            run, created = self.client.create_run_raw(self._create, timeout=self._timeout())
        if not created and run.status != Status.running:
            # The same external_id again: a resumed run is running once more.
            run = self.client.update_run(run.id, RESUMED)
        self.run = run
        self.run_ready.set()
        try:
            self.client.version()  # warns on a contract mismatch
        except (httpx.HTTPError, MomentumAPIError) as exc:
            log.debug("could not read the service version: %s", exc)

    def _maybe_heartbeat(self) -> None:
        now = time.monotonic()
        if self.run is None or now < self._next_heartbeat or self._closing:
            return
        self._next_heartbeat = now + self.options.heartbeat_interval
        try:
            self.client.heartbeat(self.run.id, timeout=self.options.heartbeat_timeout)
            self.stats.heartbeats += 1
        except (httpx.HTTPError, MomentumAPIError) as exc:
            log.debug("heartbeat failed: %s", exc)

    def _timeout(self) -> httpx.Timeout:
        """The client's timeout, cut short by the close deadline."""
        remaining = self._deadline - time.monotonic()
        if remaining == float("inf"):
            return self.client.timeout
        return httpx.Timeout(max(0.05, min(remaining, self.client.timeout.read or remaining)))

    def _idle_wait(self) -> float:
        wait = min(self.options.flush_interval, self._deadline - time.monotonic())
        if not self._closing:
            wait = min(wait, self._next_heartbeat - time.monotonic())
        return max(0.01, wait)

    def _pause(self, seconds: float) -> None:
        """Sleep, but no later than the deadline; `close` cuts the current pause short."""
        remaining = self._deadline - time.monotonic()
        if self._interrupt.wait(max(0.0, min(seconds, remaining))):
            self._interrupt.clear()

    def _past_deadline(self) -> bool:
        return time.monotonic() >= self._deadline
