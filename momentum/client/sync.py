"""`momentum sync PATH`: replay a spool file left behind by a run that could not finish
sending (the service was down past the close timeout, or refused the token).

Records go out in file order; resending is safe because the service upserts on
(run, key, step) and finds the run again by its `external_id`. A failure stops the
replay with the file kept, so running the command again picks up from the start.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from momentum.client.http import MomentumClient
from momentum.client.retry import Backoff, Retrying
from momentum.client.spool import POINTS, UPDATE, iter_records


@dataclass
class SyncResult:
    run_id: int
    points: int = 0
    updates: int = 0


def sync_spool(
    path: Path,
    client: MomentumClient,
    *,
    attempts: int = 5,
    backoff: Backoff | None = None,
    sleep: Callable[[float], None] = time.sleep,
    delete: bool = True,
) -> SyncResult:
    """Send every record of the spool file at `path`; delete it when all were accepted.

    Each request gets `attempts` tries for failures that may pass (network, 5xx, 429)."""
    retry = Retrying(attempts, backoff or Backoff(0.5, 10.0), sleep)
    records = iter_records(path)
    create = next(records)
    run, _ = retry(client.create_run_raw, create.body)
    result = SyncResult(run_id=run.id)
    for record in records:
        if record.kind == POINTS:
            retry(client.log_points, run.id, record.body)
            result.points += record.points
        elif record.kind == UPDATE:
            retry(client.update_run, run.id, record.body)
            result.updates += 1
    if delete:
        path.unlink()
    return result
