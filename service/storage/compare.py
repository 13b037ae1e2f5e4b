"""Data access for comparisons: many runs' series ids in one query, chunked reads.

Point data is read only through `metrics.read_columns` (array-at-a-time); this module
adds the lookups a comparison of many runs needs without one query per run.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.db import transaction
from service.models import Run, Series
from service.storage.metrics import read_columns

MAX_STEP = 2**63 - 1


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
    sessions: sessionmaker[Session], series_id: int, chunk_steps: int
) -> Iterator[np.ndarray]:
    """A series' points in step windows, each read in its own short transaction.

    Windows start `chunk_steps` wide; an empty window makes the next one 16x wider (sparse or
    ending series cost a few probes, not one per window) and a window with points
    resets it. The series ends when a window reaching MAX_STEP comes back empty.
    """
    start, width = 0, chunk_steps
    while start <= MAX_STEP:
        end = min(MAX_STEP, start + width - 1)
        with transaction(sessions, write=False) as session:
            records = read_columns(session, series_id, start, end)
        if len(records):
            yield records
            width = chunk_steps
        elif end == MAX_STEP:
            return
        else:
            width *= 16
        start = end + 1
