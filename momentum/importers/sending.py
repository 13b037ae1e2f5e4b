"""What both importers share on the service's side: points sent in batches, and only
those a run does not hold yet."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from momentum.client import MomentumClient

BATCH_POINTS = 5000  # well under the service's batch limit; a few hundred KB a request
Point = tuple[int, float, float]  # step, value, wall time


def last_steps(client: MomentumClient, run_id: int) -> dict[str, int]:
    """Each series of the run: its highest step."""
    return {item.key: item.last_step for item in client.list_series(run_id).items}


def new_points(
    series: Mapping[str, Sequence[Point]], held: Mapping[str, int]
) -> list[dict[str, Any]]:
    """The points after each key's highest stored step (all of a key the run lacks)."""
    points = []
    for key, items in series.items():
        after = held.get(key)
        points += [
            {"key": key, "step": step, "value": value, "wall_time": wall_time}
            for step, value, wall_time in items
            if after is None or step > after
        ]
    return points


def send_points(client: MomentumClient, run_id: int, points: Sequence[dict[str, Any]]) -> int:
    """Send `points` in batches through the ingest route; returns how many were sent."""
    for batch in _batches(points, BATCH_POINTS):
        client.log_points(run_id, batch)
    return len(points)


def _batches(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
