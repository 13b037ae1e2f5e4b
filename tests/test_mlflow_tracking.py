"""The rest of MLflow tracking (#20) through the real MLflow client against a real
service, on SQLite and PostgreSQL: user ids, MLflow's search orders, experiment and run
lifecycle (soft delete, restore, rename, tags), negative steps, the bulk histories and
MLflow's sampling, datasets, MLflow's error wording and its ENDPOINT_NOT_FOUND.

One service per backend serves the whole module (each test makes its own experiments),
so the module costs two server starts, not one per test.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.data.numpy_dataset import from_numpy
from mlflow.entities import ViewType
from mlflow.exceptions import MlflowException

from tests.conftest import BACKENDS
from tests.support import live_server, scratch_postgres_database

MLFLOW = "/api/2.0/mlflow"
AJAX = "/ajax-api/2.0/mlflow"


@pytest.fixture(scope="module", params=BACKENDS)
def server_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A fresh database of the backend and `momentum serve` on it, for the module."""
    patch = pytest.MonkeyPatch()
    patch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    patch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    try:
        if request.param == "sqlite":
            target = tmp_path_factory.mktemp("mlflow") / "momentum.sqlite3"
            shutil.copyfile(request.getfixturevalue("sqlite_template"), target)
            with live_server({"MOMENTUM_DATABASE_URL": f"sqlite:///{target}"}, timeout=120) as url:
                yield url
            return
        server = request.getfixturevalue("postgres_server")
        template = request.getfixturevalue("postgres_template")
        with scratch_postgres_database(server, "momentum_mlflow", template) as database:
            with live_server({"MOMENTUM_DATABASE_URL": database}, timeout=120) as url:
                yield url
    finally:
        patch.undo()


@pytest.fixture
def client(server_url: str) -> MlflowClient:
    return MlflowClient(tracking_uri=server_url)


@pytest.fixture
def http(server_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server_url) as session:
        yield session


def _experiment(client: MlflowClient, request: pytest.FixtureRequest, **kwargs: Any) -> str:
    return client.create_experiment(request.node.name, **kwargs)


def test_runs_carry_their_user_and_search_in_mlflows_order(
    client: MlflowClient, request: pytest.FixtureRequest
) -> None:
    experiment_id = _experiment(client, request)
    named = client.create_run(experiment_id, tags={"mlflow.user": "ada"})
    assert named.info.user_id == "ada"
    assert client.get_run(named.info.run_id).info.user_id == "ada"
    assert client.create_run(experiment_id).info.user_id == "unknown"  # what the client sends

    # Same start time: run_id ascending, compared as text as MLflow compares its ids
    # (12 runs: ids cross a power of ten, so "10" < "9" is tested); later starts first.
    ordered_id = client.create_experiment(f"{request.node.name}-order")
    tied = [client.create_run(ordered_id, start_time=5000).info.run_id for _ in range(12)]
    late = client.create_run(ordered_id, start_time=9000).info.run_id
    found = [run.info.run_id for run in client.search_runs([ordered_id])]
    assert found == [late, *sorted(tied)]
    # Pages of that order are stable: together they are the whole list, once each.
    paged, token = [], None
    while True:
        page = client.search_runs([ordered_id], max_results=2, page_token=token)
        paged += [run.info.run_id for run in page]
        token = page.token
        if not token:
            break
    assert paged == found
    by_user = client.search_runs([experiment_id], filter_string="attributes.user_id = 'ada'")
    assert [run.info.run_id for run in by_user] == [named.info.run_id]


def test_experiments_search_in_mlflows_order_and_delete_restore_rename_and_tags(
    client: MlflowClient, request: pytest.FixtureRequest, http: httpx.Client
) -> None:
    prefix = request.node.name[:20]
    first = client.create_experiment(
        f"{prefix}-a", artifact_location="s3://bucket/a", tags={"team": "vision"}
    )
    second = client.create_experiment(f"{prefix}-b", tags={"team": "nlp"})
    made = client.get_experiment(first)
    assert made.artifact_location == "s3://bucket/a" and made.tags == {"team": "vision"}
    mine = f"name LIKE '{prefix}-%'"
    # creation_time DESC, then experiment_id ASC.
    newest_first = client.search_experiments(filter_string=mine)
    assert [e.experiment_id for e in newest_first] == [second, first] or (
        newest_first[0].creation_time == newest_first[1].creation_time
        and [e.experiment_id for e in newest_first] == sorted([first, second], key=int)
    )
    by_name = client.search_experiments(filter_string=mine, order_by=["name DESC"])
    assert [e.name for e in by_name] == [f"{prefix}-b", f"{prefix}-a"]
    tagged = client.search_experiments(filter_string="tags.team = 'nlp'")
    assert [e.experiment_id for e in tagged] == [second]

    run = client.create_run(first)
    client.delete_experiment(first)
    assert client.get_experiment(first).lifecycle_stage == "deleted"
    assert client.get_run(run.info.run_id).info.lifecycle_stage == "deleted"  # its runs too
    active = client.search_experiments(filter_string=mine)
    deleted = client.search_experiments(filter_string=mine, view_type=ViewType.DELETED_ONLY)
    every = client.search_experiments(filter_string=mine, view_type=ViewType.ALL)
    assert [e.experiment_id for e in active] == [second]
    assert [e.experiment_id for e in deleted] == [first]
    assert {e.experiment_id for e in every} == {first, second}
    with pytest.raises(MlflowException, match="must be in the 'active' state"):
        client.create_run(first)
    client.restore_experiment(first)
    assert client.get_run(run.info.run_id).info.lifecycle_stage == "active"

    client.rename_experiment(first, f"{prefix}-renamed")
    assert client.get_experiment(first).name == f"{prefix}-renamed"
    native = http.get(f"/api/v1/runs/{run.info.run_id}").json()
    assert native["project"] == f"{prefix}-renamed"  # the project moved with the name
    client.set_experiment_tag(first, "stage", "two")
    client.delete_experiment_tag(first, "team")
    assert client.get_experiment(first).tags == {"stage": "two"}
    with pytest.raises(MlflowException, match="No tag with name: team"):
        client.delete_experiment_tag(first, "team")
    with pytest.raises(MlflowException, match="reserved experiment"):
        client.delete_experiment("0")
    # A relative local path is resolved against the server's working directory, as
    # MLflow's server does; absolute paths stay as sent.
    relative = client.create_experiment(f"rel-{prefix}", artifact_location="runs/here")
    resolved = client.get_experiment(relative).artifact_location
    assert Path(resolved).is_absolute() and resolved.endswith("/runs/here"), resolved
    absolute = client.create_experiment(f"abs-{prefix}", artifact_location="/srv/a")
    assert client.get_experiment(absolute).artifact_location == "/srv/a"


def test_runs_soft_delete_restore_and_delete_tag(
    client: MlflowClient, request: pytest.FixtureRequest, http: httpx.Client
) -> None:
    experiment_id = _experiment(client, request)
    project = request.node.name
    kept, gone = (client.create_run(experiment_id).info.run_id for _ in range(2))
    client.set_tag(gone, "note", "x")
    client.delete_run(gone)
    assert client.get_run(gone).info.lifecycle_stage == "deleted"
    assert [r.info.run_id for r in client.search_runs([experiment_id])] == [kept]
    deleted = client.search_runs([experiment_id], run_view_type=ViewType.DELETED_ONLY)
    assert [r.info.run_id for r in deleted] == [gone]
    with pytest.raises(MlflowException, match=f"The run {gone} must be in the 'active' state"):
        client.log_metric(gone, "loss", 1.0)

    # /api/v1 hides it from lists unless asked; its own GET still answers.
    def listed(**params: str) -> list[int]:
        found = http.get("/api/v1/runs", params={"project": project, **params}).json()
        return sorted(item["id"] for item in found["items"])

    assert listed() == [int(kept)]
    assert listed(lifecycle="deleted") == [int(gone)]
    assert listed(lifecycle="all") == sorted([int(kept), int(gone)])
    assert http.get(f"/api/v1/runs/{gone}").json()["lifecycle_stage"] == "deleted"

    client.restore_run(gone)
    assert client.get_run(gone).info.lifecycle_stage == "active"
    client.delete_tag(gone, "note")
    assert "note" not in client.get_run(gone).data.tags
    with pytest.raises(MlflowException, match="No tag with name: note"):
        client.delete_tag(gone, "note")
    # /api/v1's DELETE stays a hard delete.
    assert http.delete(f"/api/v1/runs/{gone}").status_code == 204
    with pytest.raises(MlflowException, match="not found"):
        client.get_run(gone)


def test_negative_steps_are_stored_read_and_compared(
    client: MlflowClient, request: pytest.FixtureRequest, http: httpx.Client
) -> None:
    experiment_id = _experiment(client, request)
    run_id = client.create_run(experiment_id).info.run_id
    for step in (-5000, -2, 0, 3):
        client.log_metric(run_id, "loss", float(step), timestamp=9000 + step, step=step)
    history = client.get_metric_history(run_id, "loss")
    assert [m.step for m in history] == [-5000, -2, 0, 3]
    assert client.get_run(run_id).data.metrics["loss"] == 3.0  # the highest step's

    # /api/v1 takes any int64 step too, and reads and compares them.
    points = [{"key": "acc", "step": s, "value": s / 10} for s in (-9000, -1, 2)]
    logged = http.post(f"/api/v1/runs/{run_id}/metrics", json={"points": points})
    assert logged.status_code == 200, logged.text
    series = http.get(f"/api/v1/runs/{run_id}/metrics/acc").json()
    assert series["steps"] == [-9000, -1, 2]
    zoomed = http.get(f"/api/v1/runs/{run_id}/metrics/acc", params={"start_step": -10}).json()
    assert zoomed["steps"] == [-1, 2]
    compared = http.get("/api/v1/compare", params={"run_ids": run_id, "keys": "loss"}).json()
    assert compared["series"][0]["steps"] == [-5000, -2, 0, 3]


def test_bulk_histories_sample_and_order_as_mlflow_does(
    client: MlflowClient, request: pytest.FixtureRequest, http: httpx.Client
) -> None:
    experiment_id = _experiment(client, request)
    ten, twenty = (client.create_run(experiment_id).info.run_id for _ in range(2))
    client.log_batch(ten, metrics=[_metric(step) for step in range(10)])
    client.log_batch(twenty, metrics=[_metric(step) for step in range(-3, 17)])

    def steps(run_ids: list[str], **params: Any) -> dict[str, list[int]]:
        answer = http.get(
            f"{AJAX}/metrics/get-history-bulk-interval",
            params={"run_ids": run_ids, "metric_key": "m", **params},
        )
        assert answer.status_code == 200, answer.text
        out: dict[str, list[int]] = {}
        for metric in answer.json()["metrics"]:
            out.setdefault(metric["run_id"], []).append(metric["step"])
        return out

    sampled = steps([ten, twenty], max_results=5)
    assert sampled == {ten: [0, 2, 4, 6, 9], twenty: [-3, 1, 5, 9, 16]}
    assert steps([ten], max_results=5, start_step=0, end_step=4) == {ten: [0, 1, 2, 3, 4]}
    assert steps([ten], max_results=1) == {ten: [9]}

    whole = http.get(
        f"{MLFLOW}/metrics/get-history-bulk", params={"run_id": [twenty, ten], "metric_key": "m"}
    ).json()["metrics"]
    expected_order = sorted([ten, twenty])  # by run id as text, as MLflow's
    assert [m["run_id"] for m in whole] == [expected_order[0]] * len(
        [m for m in whole if m["run_id"] == expected_order[0]]
    ) + [expected_order[1]] * len([m for m in whole if m["run_id"] == expected_order[1]])
    assert [m["step"] for m in whole if m["run_id"] == twenty] == list(range(-3, 17))
    limited = http.get(
        f"{MLFLOW}/metrics/get-history-bulk",
        params={"run_id": [ten], "metric_key": "m", "max_results": 3},
    ).json()["metrics"]
    assert [m["step"] for m in limited] == [0, 1, 2]


def _metric(step: int) -> Any:
    from mlflow.entities import Metric

    return Metric("m", float(step), 1_000 + step, step)


def test_log_input_records_datasets(
    server_url: str, client: MlflowClient, request: pytest.FixtureRequest, http: httpx.Client
) -> None:
    experiment_id = _experiment(client, request)
    dataset = from_numpy(np.arange(10.0).reshape(5, 2), source="s3://bucket/x.npy", name="tiny")
    mlflow.set_tracking_uri(server_url)
    try:
        with mlflow.start_run(experiment_id=experiment_id) as active:
            mlflow.log_input(dataset, context="training")
            mlflow.log_input(dataset, context="training")  # the same input again: kept once
    finally:
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
    inputs = client.get_run(active.info.run_id).inputs.dataset_inputs
    assert len(inputs) == 1
    stored = inputs[0].dataset
    assert (stored.name, stored.digest, stored.source_type) == ("tiny", dataset.digest, "s3")
    assert stored.source == dataset.source.to_json() and stored.schema and stored.profile
    assert {tag.key: tag.value for tag in inputs[0].tags} == {"mlflow.data.context": "training"}
    found = http.post(
        f"{MLFLOW}/experiments/search-datasets", json={"experiment_ids": [experiment_id]}
    )
    assert found.json() == {
        "dataset_summaries": [
            {
                "experiment_id": experiment_id,
                "name": "tiny",
                "digest": dataset.digest,
                "context": "training",
            }
        ]
    }
    empty = http.post(f"{AJAX}/experiments/search-datasets", json={"experiment_ids": []})
    assert empty.status_code == 400
    assert "at least one experiment_id" in empty.json()["message"]


@pytest.mark.parametrize(
    ("path", "body", "wording"),
    [
        ("experiments/create", {"name": 123}, "Invalid value 123 for parameter 'name'"),
        ("experiments/create", {}, "Missing value for required parameter 'name'"),
        (
            "experiments/create",
            {"name": "x", "artifact_location": 9.0},
            "Invalid value 9.0 for parameter 'artifact_location'",
        ),
        (
            "experiments/create",
            {"name": "x", "tags": "5"},
            "Invalid value \"5\" for parameter 'tags'",
        ),
        (
            "runs/log-metric",
            {"run_id": 31, "key": "m", "value": 1, "timestamp": 1},
            "Invalid value 31 for parameter 'run_id' supplied",
        ),
        (
            "runs/log-metric",
            {"run_id": "RUN", "value": 1, "timestamp": 1},
            "Missing value for required parameter 'key'",
        ),
        (
            "runs/log-metric",
            {"run_id": "RUN", "key": "m", "value": 1, "timestamp": 1, "step": "foo"},
            "Invalid value \"foo\" for parameter 'step' supplied",
        ),
        (
            "runs/log-metric",
            {"run_id": None, "key": "m", "value": 1, "timestamp": 1},
            "Missing value for required parameter 'run_id'",
        ),
        (
            "runs/set-tag",
            {"run_id": "RUN", "key": "k", "value": 41},
            "Invalid value 41 for parameter 'value' supplied",
        ),
        (
            "runs/log-batch",
            {"run_id": "RUN", "metrics": "foo"},
            "Invalid value \"foo\" for parameter 'metrics' supplied",
        ),
        (
            "runs/log-batch",
            {"run_id": "RUN", "metrics": [{"key": "m", "value": 2.5}]},
            "Missing value for required parameter 'metrics[0].timestamp'",
        ),
        (
            "runs/log-batch",
            {"run_id": "RUN", "metrics": [{"key": "m", "value": 1, "timestamp": 1}, {"key": "m"}]},
            "Missing value for required parameter 'metrics[1].value'",
        ),
        (  # several fields refused: the first in MLflow's order is named
            "runs/log-parameter",
            {"run_id": 31, "key": "p", "value": 41},
            "Invalid value 31 for parameter 'run_id' supplied",
        ),
        (
            "runs/set-tag",
            {"run_id": 31, "key": "k", "value": 41},
            "Invalid value 31 for parameter 'run_id' supplied",
        ),
    ],
)
def test_invalid_requests_get_mlflows_status_and_wording(
    client: MlflowClient,
    http: httpx.Client,
    path: str,
    body: dict[str, Any],
    wording: str,
) -> None:
    run_id = client.create_run("0").info.run_id
    sent = {k: run_id if v == "RUN" else v for k, v in body.items()}
    answer = http.post(f"{MLFLOW}/{path}", json=sent)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert wording in answer.json()["message"]
    assert client.get_metric_history(run_id, "m") == []  # nothing written


def test_bulk_interval_refusals_and_unknown_endpoints(
    client: MlflowClient, http: httpx.Client
) -> None:
    interval = f"{AJAX}/metrics/get-history-bulk-interval"
    cases = [
        ({"metric_key": "k"}, "Missing value for required parameter 'run_ids'."),
        ({"run_ids": ["1"], "metric_key": ""}, "Missing value for required parameter 'metric_key'"),
        ({"run_ids": ["1"], "metric_key": "k", "max_results": 0}, "between 1 and 2500"),
        ({"run_ids": ["1"], "metric_key": "k", "start_step": 1}, "both must be specified"),
        (
            {"run_ids": ["1"], "metric_key": "k", "start_step": 1, "end_step": 0},
            "end_step must be greater than start_step. ",
        ),
    ]
    for params, wording in cases:
        answer = http.get(interval, params=params)
        assert answer.status_code == 400 and wording in answer.json()["message"], answer.text

    for path in ("/api/3.0/mlflow/logged-models/search", "/ajax-api/2.0/mlflow/traces", "/graphql"):
        answer = http.post(path, json={})
        assert answer.status_code == 404, path
        assert answer.json()["error_code"] == "ENDPOINT_NOT_FOUND", path
    with pytest.raises(MlflowException) as refused:
        client.create_registered_model("nope")
    assert refused.value.error_code == "ENDPOINT_NOT_FOUND"
    assert http.get("/health").text == "OK"
    assert http.get("/version").text.startswith("3.")


@pytest.fixture(autouse=True)
def _fresh_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fluent API's run and the client's caches stay out of the working tree."""
    monkeypatch.chdir(tmp_path)
