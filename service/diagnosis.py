"""Diagnosis (#21) against the database: read whole series, analyse, store and announce.

Live diagnosis never runs in an ingest request. Each replica's `LiveDiagnosis` follows
the change feed (the `points` events ingest already writes), notes which runs and keys
got points, and every MOMENTUM_DIAGNOSIS_INTERVAL_S re-reads those series whole and
diagnoses them in a thread of its own: a short debounce per run. A run whose analysis
took t seconds waits at least SLOW_RUN_FACTOR × t before its next one, so a run of a
million points, streaming, costs the server a bounded share of its time. Findings are
stored (service/storage/findings.py) and, when they change, announced as `diagnosis`
events. Replicas diagnose alike, so a second one finds nothing to change.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from anyio import to_thread
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from momentum.contract import Finding
from momentum.contract.metrics import MAX_STEP, better_direction
from service import events
from service.analysis.diagnosis import VALIDATION_PREFIX, Series, diagnose, validation_key
from service.db import transaction
from service.models import Run
from service.state import AppState
from service.storage import findings as finding_store
from service.storage import metrics as metric_store

log = logging.getLogger(__name__)

# A run is diagnosed again no sooner than this many times its last analysis took.
SLOW_RUN_FACTOR = 20.0
# Keys of one run diagnosed live (the route diagnoses any key on request).
MAX_LIVE_KEYS = 8
# Change-feed events read per round.
EVENTS_PER_ROUND = 1000


def read_series(session: Session, run_id: int, key: str) -> Series | None:
    """The whole stored series (not a sample), or None if the run has no such key."""
    series_id = metric_store.find_series_id(session, run_id, key)
    if series_id is None:
        return None
    records = metric_store.read_columns(session, series_id, 0, MAX_STEP)
    return Series(records["step"].astype("int64"), records["value"].astype("float64"))


def diagnose_key(session: Session, run: Run, key: str) -> list[Finding] | None:
    """The run's findings for `key` (and its `val_` twin, if logged); None: no such key."""
    train = read_series(session, run.id, key)
    if train is None:
        return None
    validation = read_series(session, run.id, validation_key(key))
    return diagnose(key, train, run.params or {}, validation)


def live_keys(keys: set[str]) -> set[str]:
    """Which of a batch's keys to diagnose live: losses; a `val_` loss names its twin."""
    chosen = set()
    for key in keys:
        head, slash, name = key.rpartition("/")
        if name.startswith(VALIDATION_PREFIX):
            key = f"{head}{slash}{name.removeprefix(VALIDATION_PREFIX)}"
        if better_direction(key) == "min":
            chosen.add(key)
    return chosen


@dataclass
class _RunState:
    keys: set[str] = field(default_factory=set)
    not_before: float = 0.0


class LiveDiagnosis:
    """Follows the change feed and diagnoses runs that got points (see the module doc)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        # From the oldest retained event: after a restart, runs that got points within
        # the feed's retention are diagnosed again (and points of a run posted while
        # this replica was starting are not missed).
        self.position = 0
        self.runs: dict[int, _RunState] = {}

    def round(self) -> int:
        """One round: note new points, diagnose the runs whose turn it is. Returns how
        many (run, key) diagnoses changed what was stored."""
        self._follow_feed()
        now = time.monotonic()
        due = [run_id for run_id, state in self.runs.items() if state.not_before <= now]
        changed = 0
        for run_id in due:
            state = self.runs.pop(run_id)
            started = time.monotonic()
            for key in sorted(state.keys)[:MAX_LIVE_KEYS]:
                changed += self._diagnose(run_id, key)
            cost = time.monotonic() - started
            self.runs.setdefault(run_id, _RunState()).not_before = now + SLOW_RUN_FACTOR * cost
            if not self.runs[run_id].keys:
                self._forget_when_idle(run_id)
        return changed

    def _forget_when_idle(self, run_id: int) -> None:
        """Keep a run's wait while it still matters; otherwise drop its entry."""
        if self.runs[run_id].not_before <= time.monotonic():
            del self.runs[run_id]

    def _follow_feed(self) -> None:
        with transaction(self.sessions, write=False) as session:
            batch = events.read_after(session, self.position, None, EVENTS_PER_ROUND)
        self.position = batch.position
        for event in batch.events:
            if event.kind != "points":
                continue
            keys = live_keys(set(event.payload.get("keys", {})))
            if keys:
                self.runs.setdefault(int(event.payload["run_id"]), _RunState()).keys |= keys

    def _diagnose(self, run_id: int, key: str) -> bool:
        with transaction(self.sessions, write=False) as session:
            run = session.get(Run, run_id)
            found = diagnose_key(session, run, key) if run is not None else None
        if found is None:
            return False
        with transaction(self.sessions, write=True, queue=True) as session:
            if session.scalar(select(Run.id).where(Run.id == run_id)) is None:
                return False  # deleted meanwhile
            return finding_store.replace(session, run_id, key, found)


async def follow(state: AppState) -> None:
    """The lifespan's task: a round every interval, in a worker thread, until cancelled."""
    live = LiveDiagnosis(state.sessions)
    failing = False
    while True:
        await asyncio.sleep(state.settings.diagnosis_interval_s)
        if state.schema_gate.pending() is not None:
            continue  # no tables yet
        try:
            await to_thread.run_sync(live.round)
        except Exception:  # a database hiccup must not end live diagnosis
            if not failing:
                log.exception("live diagnosis failed; retrying every round")
            failing = True
        else:
            failing = False
