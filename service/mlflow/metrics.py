"""MLflow metrics into our series, and back.

The repeated-step rule. MLflow keeps every value logged for a step; our series hold
one value per (key, step) and upsert. So that no value is ever lost silently:
- a value sent again for a step with the same timestamp and value is a resend
  (a retried request) and changes nothing;
- a value for a step that already holds a different value or timestamp (in storage
  or earlier in the same batch: `log_metric` without a step always sends step 0) goes
  to the next free step after the series' highest, keeping its timestamp, and the
  run's tag `momentum.moved_steps.<key>` counts the values so moved.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from momentum.contract import MetricPoint
from momentum.contract.common import METRIC_KEY_RE
from momentum.contract.metrics import MAX_STEP, MAX_WALL_TIME, MIN_STEP
from momentum.contract.values import encode_value
from service.mlflow.errors import invalid, invalid_value, missing_value, required_string
from service.mlflow.values import proto_double, proto_int
from service.models import Run, Series
from service.storage import metrics as metric_store

MOVED_TAG = "momentum.moved_steps."


@dataclass(frozen=True)
class MlflowMetric:
    key: str
    value: float
    timestamp: int  # ms since the epoch
    step: int


def parse_metric(raw: dict[str, Any]) -> MlflowMetric:
    key = raw.get("key")
    if not isinstance(key, str) or not METRIC_KEY_RE.match(key):
        raise invalid(f"metric key {key!r}: 1-250 letters, digits, '_ - . /' or space")
    try:
        value = proto_double(raw["value"])
        stamp, step_given = raw.get("timestamp"), raw.get("step")
        timestamp = int(time.time() * 1000) if stamp is None else proto_int(stamp)
        step = 0 if step_given is None else proto_int(step_given)
    except (KeyError, TypeError, ValueError) as exc:
        raise invalid(
            f"metric {key!r}: value must be a number, timestamp and step whole numbers"
        ) from exc
    if not MIN_STEP <= step <= MAX_STEP:
        raise invalid(f"metric {key!r}: step {step} is outside {MIN_STEP}..{MAX_STEP}")
    if not 0 <= timestamp <= MAX_WALL_TIME * 1000:
        raise invalid(f"metric {key!r}: timestamp {timestamp} is not milliseconds since 1970")
    return MlflowMetric(key, value, timestamp, step)


def log_metric_fields(body: Any) -> dict[str, Any]:
    """`runs/log-metric`'s fields as one metric, checked with MLflow's wording (a
    timestamp left out is now and a step left out 0; log-batch requires timestamps)."""
    key = required_string("key", body.key)
    if body.value is None:
        raise missing_value("value")
    for name in ("value", "timestamp", "step"):
        raw = getattr(body, name)
        try:
            if raw is not None:
                proto_double(raw) if name == "value" else proto_int(raw)
        except (TypeError, ValueError):
            raise invalid_value(name, raw) from None
    return {"key": key, "value": body.value, "timestamp": body.timestamp, "step": body.step}


def check_timestamps(metrics: Sequence[dict[str, Any]]) -> None:
    """log-batch's metrics each carry a key, a value and a timestamp, as MLflow requires;
    the first one missing is named by its path, as MLflow names it (`metrics[0].timestamp`)."""
    for index, metric in enumerate(metrics):
        if not isinstance(metric, dict):
            continue
        for field in ("key", "value", "timestamp"):
            if metric.get(field) is None or metric.get(field) == "":
                raise missing_value(f"metrics[{index}].{field}")


def _same(a: tuple[float, int], b: tuple[float, int]) -> bool:
    both_nan = math.isnan(a[0]) and math.isnan(b[0])
    return (both_nan or a[0] == b[0]) and a[1] == b[1]


def _stored(
    session: Session, run_id: int, key: str, steps: Sequence[int]
) -> tuple[dict[int, tuple[float, int]], int | None]:
    """What the series holds at the batch's steps, and its highest step (None if none)."""
    found = session.execute(
        select(Series.id, Series.last_step).where(Series.run_id == run_id, Series.key == key)
    ).first()
    if found is None or found.last_step is None:
        return {}, None
    columns = metric_store.read_columns(session, found.id, min(steps), max(steps))
    held = {
        int(step): (float(value), int(round(wall_time * 1000)))
        for step, value, wall_time in zip(
            columns["step"], columns["value"], columns["wall_time"], strict=True
        )
    }
    return held, int(found.last_step)


def _free_step(key: str, step: int, next_free: int) -> int:
    """The step a repeated value moves to; past MAX_STEP there is none (an int64 overflow
    once, a 500): the request is refused whole, before anything is stored."""
    if next_free > MAX_STEP:
        raise invalid(
            f"metric {key!r}: step {step} already holds another value, and no step after "
            f"the series' highest is free to keep this one (steps end at {MAX_STEP})"
        )
    return next_free


def _by_key(
    run: Run, metrics: Sequence[MlflowMetric], max_keys: int | None
) -> dict[str, list[MlflowMetric]]:
    """The metrics grouped by key; more keys than `max_keys` is refused before a query
    per key."""
    by_key: dict[str, list[MlflowMetric]] = {}
    for metric in metrics:
        by_key.setdefault(metric.key, []).append(metric)
    if max_keys is not None and len(by_key) > max_keys:
        raise invalid(str(metric_store.TooManyKeys(run.id, len(by_key), max_keys)))
    return by_key


def _placed(
    session: Session, run_id: int, key: str, items: Sequence[MlflowMetric]
) -> tuple[list[MetricPoint], int]:
    """One key's points at their steps by the repeated-step rule, and how many moved."""
    held, highest = _stored(session, run_id, key, [m.step for m in items])
    highest_sent = max(m.step for m in items)
    next_free = (highest_sent if highest is None else max(highest, highest_sent)) + 1
    points: list[MetricPoint] = []
    moved = 0
    for metric in items:
        incoming = (metric.value, metric.timestamp)
        step = metric.step
        if step in held:
            if _same(held[step], incoming):
                continue  # a resend
            step, next_free = _free_step(key, metric.step, next_free), next_free + 1
            moved += 1
        held[step] = incoming
        points.append(
            {"key": key, "step": step, "value": metric.value, "wall_time": metric.timestamp / 1000}
        )
    return points, moved


def _count_moved(session: Session, run: Run, moved: dict[str, int]) -> None:
    """Add each key's moved values to the run's `momentum.moved_steps.<key>` tag."""
    tags = dict(run.tags)
    for key, count in moved.items():
        tags[MOVED_TAG + key] = str(int(tags.get(MOVED_TAG + key, "0")) + count)
    run.tags = tags
    session.flush()


def log_metrics(
    session: Session, run: Run, metrics: Sequence[MlflowMetric], max_keys: int | None = None
) -> int:
    """Store the metrics by the repeated-step rule; returns how many values moved.
    More keys than `max_keys` for the run: INVALID_PARAMETER_VALUE, nothing stored."""
    if not metrics:
        return 0
    if session.get_bind().dialect.name == "postgresql":
        # Two batches for one run take turns, so both see each other's steps.
        session.execute(select(Run.id).where(Run.id == run.id).with_for_update())
    points: list[MetricPoint] = []
    moved: dict[str, int] = {}
    for key, items in _by_key(run, metrics, max_keys).items():
        placed, moved_here = _placed(session, run.id, key, items)
        points += placed
        if moved_here:
            moved[key] = moved_here
    if points:
        try:
            metric_store.ingest(session, run.id, points, time.time(), max_keys)
        except metric_store.TooManyKeys as exc:
            raise invalid(str(exc)) from None
    if moved:
        _count_moved(session, run, moved)
    return sum(moved.values())


def _metric_json(key: str, step: Any, value: Any, wall_time: Any) -> dict[str, Any]:
    return {
        "key": key,
        "value": encode_value(float(value)),
        "timestamp": int(round(float(wall_time) * 1000)),
        "step": int(step),
    }


def _series_id(session: Session, run_id: int, key: str) -> int | None:
    # No key holds NUL (logging refuses it), and PostgreSQL fails on NUL in a query's
    # text: such a key is an unknown one, as on SQLite, without asking the database.
    return None if "\x00" in key else metric_store.find_series_id(session, run_id, key)


def history(
    session: Session, run_id: int, key: str, start_step: int, limit: int
) -> tuple[list[dict[str, Any]], int | None]:
    """Points from `start_step` on, at most `limit`, and the step the next page starts at."""
    series_id = _series_id(session, run_id, key)
    if series_id is None:
        return [], None
    columns = metric_store.read_columns(session, series_id, start_step, MAX_STEP)
    page = columns[:limit]
    following = int(columns["step"][limit]) if len(columns) > limit else None
    items = [
        _metric_json(key, step, value, wall_time)
        for step, value, wall_time in zip(
            page["step"], page["value"], page["wall_time"], strict=True
        )
    ]
    return items, following


def sample_indices(total: int, limit: int) -> np.ndarray:
    """MLflow 3.x's sample of `total` ordered points: NTILE(limit) buckets (the first
    `total % limit` one point larger), the first point of each, and the last point in
    place of the last pick when it is not already one."""
    if total <= limit:
        return np.arange(total)
    size, larger = divmod(total, limit)
    buckets = np.arange(limit)
    picks = buckets * size + np.minimum(buckets, larger)
    picks[-1] = total - 1
    return picks


def sampled(
    session: Session, run_id: int, key: str, start: int, end: int, limit: int
) -> list[dict[str, Any]]:
    """At most `limit` points of steps start..end, sampled as MLflow samples them."""
    series_id = _series_id(session, run_id, key)
    if series_id is None:
        return []
    columns = metric_store.read_columns(session, series_id, start, end)
    columns = columns[sample_indices(len(columns), limit)]
    return [
        {**_metric_json(key, step, value, wall_time), "run_id": str(run_id)}
        for step, value, wall_time in zip(
            columns["step"], columns["value"], columns["wall_time"], strict=True
        )
    ]


def whole_history(session: Session, run_id: int, key: str, limit: int) -> list[dict[str, Any]]:
    """A run's whole series of `key` (none for an unknown run or key), by timestamp, then
    step and value as MLflow orders get-history-bulk, at most `limit` points."""
    series_id = _series_id(session, run_id, key)
    if series_id is None or limit <= 0:
        return []
    columns = metric_store.read_columns(session, series_id, MIN_STEP, MAX_STEP)
    order = np.lexsort((columns["value"], columns["step"], columns["wall_time"]))[:limit]
    columns = columns[order]
    return [
        {**_metric_json(key, step, value, wall_time), "run_id": str(run_id)}
        for step, value, wall_time in zip(
            columns["step"], columns["value"], columns["wall_time"], strict=True
        )
    ]
