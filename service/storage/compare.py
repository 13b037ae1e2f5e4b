"""Data access for comparisons: many runs' series ids in one query, chunked reads.

Point data is read only through `metrics` (array-at-a-time); this module
adds the lookups a comparison of many runs needs without one query per run.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from momentum.contract.metrics import MAX_STEP, MIN_STEP
from service.db import transaction
from service.models import Run, Series
from service.storage.metrics import read_window


def load_runs(session: Session, run_ids: Sequence[int]) -> dict[int, Run]:
    """The runs that exist among `run_ids`, by id (one query)."""
    if not run_ids:
        return {}
    return {run.id: run for run in session.scalars(select(Run).where(Run.id.in_(run_ids)))}


def sweep_runs(session: Session, sweep_id: int) -> list[Run]:
    return list(session.scalars(select(Run).where(Run.sweep_id == sweep_id).order_by(Run.id)))


def series_ids(
    session: Session, run_ids: Sequence[int], keys: Sequence[str] | None = None
) -> dict[tuple[int, str], int]:
    """(run_id, key) -> series id for the runs' series (all keys when `keys` is None)."""
    if not run_ids:
        return {}
    statement = select(Series.run_id, Series.key, Series.id).where(Series.run_id.in_(run_ids))
    if keys is not None:
        statement = statement.where(Series.key.in_(keys))
    return {(run_id, key): id_ for run_id, key, id_ in session.execute(statement)}


def read_in_chunks(
    sessions: sessionmaker[Session], series_id: int, window_points: int
) -> Iterator[np.ndarray]:
    """A series' points in windows of about `window_points`, each read in its own short
    transaction. A window's end is found in key order (`metrics.read_window`), so
    a sparse series costs about what a dense one of as many points does."""
    start = MIN_STEP
    while True:
        with transaction(sessions, write=False) as session:
            records, end = read_window(session, series_id, start, window_points)
        if len(records):
            yield records
        if end >= MAX_STEP:
            return
        start = end + 1
