"""A worker's lease on one job, and the thread that keeps it: `Lease` is shared by the
training thread and the `Heartbeat` thread, whose replies set its events (cancel, stop
early, lost). Used by `momentum.worker` and `momentum.worker_entry`.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from momentum.client import MomentumAPIError, MomentumClient
from momentum.contract import JobHeartbeat, JobPublic, TrainingConfig

log = logging.getLogger("momentum.worker")

LEASE_LOST = 409
# Heartbeat a third of the lease (the protocol's advice), but at least every few seconds:
# the heartbeat's reply is how a cancel reaches the worker.
MAX_HEARTBEAT_S = 2.0
MIN_HEARTBEAT_S = 0.1


@dataclass
class Lease:
    """One claimed job, shared by the training thread and the heartbeat thread."""

    job: JobPublic
    token: str
    expires_at: datetime
    run_token: str | None = None  # the child's token: it may write only the job's run
    check_steps: list[int] = field(default_factory=list)
    step: int = 0
    total: int = 0
    cancel: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)  # stopped early
    lost: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def id(self) -> int:
        return self.job.id

    @property
    def config(self) -> TrainingConfig:
        """The built-in trainer's config (an entry-point job has params instead)."""
        assert self.job.config is not None, "an entry-point job has no config"
        return self.job.config

    def heartbeat_interval(self) -> float:
        remaining = (self.expires_at - datetime.now(UTC)).total_seconds()
        return min(MAX_HEARTBEAT_S, max(MIN_HEARTBEAT_S, remaining / 3))


class Heartbeat(threading.Thread):
    """Keeps the lease alive until `lease.done`; sets `lease.cancel`, `lease.stop` or
    `lease.lost`. `beat` is also called by the training thread at a check step."""

    def __init__(self, client: MomentumClient, lease: Lease) -> None:
        super().__init__(name=f"momentum-heartbeat-{lease.id}", daemon=True)
        self.client, self.lease = client, lease

    def run(self) -> None:
        lease = self.lease
        while not lease.done.wait(lease.heartbeat_interval()) and not lease.lost.is_set():
            self.beat()

    def beat(self) -> None:
        lease = self.lease
        body = JobHeartbeat(lease_token=lease.token, step=lease.step, total=lease.total or None)
        try:
            reply = self.client.heartbeat_job(lease.id, body, timeout=5.0)
        except MomentumAPIError as exc:
            if exc.status_code == LEASE_LOST:
                log.warning("job %s: lease lost (%s); stopping it", lease.id, exc.message)
                lease.lost.set()
            else:
                log.warning("job %s: heartbeat refused: %s", lease.id, exc)
            return
        except httpx.HTTPError as exc:
            # Keep training: the lease may outlive a short outage, and a lost one shows
            # up as a 409 on a later heartbeat.
            log.warning("job %s: heartbeat failed: %s", lease.id, exc)
            return
        lease.expires_at = reply.lease_expires_at
        if reply.cancel and not lease.cancel.is_set():
            log.info("job %s: cancel requested; stopping", lease.id)
            lease.cancel.set()
        if reply.stop and not lease.stop.is_set():
            log.info("job %s: stopped early at step %s; completing", lease.id, lease.step)
            lease.stop.set()
