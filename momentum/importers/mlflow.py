"""`momentum import mlflow --from URI`: MLflow experiments become projects and their runs
come with params, tags, status, start and end times and full metric histories, read with
MLflow's own client (a tracking server `http(s)://…` or a database `sqlite:///…`,
`postgresql://…`).

Idempotent by MLflow run id: an imported run carries the tag
`momentum.import.mlflow_run_id` and is found by it again. A run found again gets only
the params and tags it lacks or that changed, its status and end time if they changed,
and per metric only the values after those it holds (MLflow keeps every value in the
order logged; ours are counted per key), so importing twice creates nothing new.
Values are written through the service's MLflow routes, so a step logged more than once
is handled by the same rule as a script logging to the service (see mlflow_target).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from momentum.importers import metric_key, require
from momentum.importers.mlflow_target import MlflowRoutes

if TYPE_CHECKING:
    from momentum.client import MomentumClient

RUN_ID_TAG = "momentum.import.mlflow_run_id"
PAGE = 1000


@dataclass(frozen=True)
class ImportedRun:
    name: str
    project: str
    run_id: int
    created: bool
    points: int  # metric values sent this time


def import_mlflow(
    client: MomentumClient,
    uri: str,
    experiment: str | None = None,
    on_run: Callable[[ImportedRun], None] | None = None,
) -> list[ImportedRun]:
    """Import every active run of `experiment` (default: of every active experiment)."""
    tracking = require("mlflow.tracking", "MLflow")
    source = tracking.MlflowClient(tracking_uri=uri)
    target = MlflowRoutes(client)
    imported = []
    for found in _experiments(source, experiment):
        experiment_id: str | None = None
        for run in _runs(source, found.experiment_id):
            experiment_id = experiment_id or target.experiment_id(found.name)
            done = import_run(client, target, source, run, experiment_id, found.name)
            imported.append(done)
            if on_run is not None:
                on_run(done)
    return imported


def _experiments(source: Any, name: str | None) -> list[Any]:
    if name is None:
        return list(source.search_experiments())
    found = source.get_experiment_by_name(name)
    if found is None:
        raise LookupError(f"the MLflow store has no experiment named {name!r}")
    return [found]


def _runs(source: Any, experiment_id: str) -> Iterator[Any]:
    token = None
    while True:
        page = source.search_runs(
            [experiment_id], max_results=PAGE, page_token=token, order_by=["start_time ASC"]
        )
        yield from page
        token = page.token
        if not token:
            return


def import_run(
    client: MomentumClient,
    target: MlflowRoutes,
    source: Any,
    run: Any,
    experiment_id: str,
    project: str,
) -> ImportedRun:
    info, data = run.info, run.data
    tags = {**data.tags, RUN_ID_TAG: info.run_id}
    run_id = _existing(client, info.run_id)
    created = run_id is None
    if run_id is None:
        name = info.run_name or info.run_id
        run_id = target.create_run(experiment_id, name, info.start_time, info.user_id, tags)
    # Read once: logging params, tags and metrics leaves the status and end time alone.
    current = target.get_run(run_id)
    _log_params_and_tags(target, run_id, current.get("data", {}), dict(data.params), tags)
    held = {item.key: item.count for item in client.list_series(run_id).items}
    metrics = []
    for key in sorted(data.metrics):
        history = source.get_metric_history(info.run_id, key)
        metrics += _metrics_to_send(metric_key(key), history, held.get(metric_key(key), 0))
    target.log_batch(run_id, metrics)
    held_info = current["info"]
    if (held_info["status"], held_info.get("end_time")) != (info.status, info.end_time):
        target.finish(run_id, info.status, info.end_time)
    return ImportedRun(info.run_name or info.run_id, project, run_id, created, len(metrics))


def _existing(client: MomentumClient, mlflow_run_id: str) -> int | None:
    response = client.request("GET", "/runs", params={"tag": f"{RUN_ID_TAG}:{mlflow_run_id}"})
    items = response.json()["items"]
    return int(items[0]["id"]) if items else None


def _log_params_and_tags(
    target: MlflowRoutes,
    run_id: int,
    data: dict[str, Any],
    params: dict[str, str],
    tags: dict[str, str],
) -> None:
    """The params the run lacks (MLflow's params never change) and the tags that differ,
    given the run's `data` as the service holds it."""
    have_params = {item["key"]: item["value"] for item in data.get("params", [])}
    have_tags = {item["key"]: item["value"] for item in data.get("tags", [])}
    params = {key: value for key, value in params.items() if key not in have_params}
    tags = {key: value for key, value in tags.items() if have_tags.get(key) != value}
    if params or tags:
        target.log_batch(run_id, params=params, tags=tags)


def _metrics_to_send(key: str, history: list[Any], held: int) -> list[dict[str, Any]]:
    """The values after the first `held`, in the order MLflow logged them (by timestamp).
    A value equal to the first one at its step (value and timestamp) is a resend, which
    the service does not store either, so it is not counted."""
    ordered = sorted(history, key=lambda metric: (metric.timestamp, metric.step))
    first: dict[int, tuple[float, int]] = {}
    kept = []
    for metric in ordered:
        value = (float(metric.value), int(metric.timestamp))
        if metric.step in first and _same(first[metric.step], value):
            continue
        first.setdefault(metric.step, value)
        kept.append(
            {"key": key, "value": _number(value[0]), "timestamp": value[1], "step": metric.step}
        )
    return kept[held:]


def _same(a: tuple[float, int], b: tuple[float, int]) -> bool:
    both_nan = math.isnan(a[0]) and math.isnan(b[0])
    return (both_nan or a[0] == b[0]) and a[1] == b[1]


def _number(value: float) -> float | str:
    """MLflow's JSON for a value: NaN and ±Infinity as their strings."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value
