"""The real MLflow client (mlflow-skinny, no MLflow server) logging to the real service."""

from __future__ import annotations

import math
from collections.abc import Iterator

import httpx
import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from tests.support import live_server

BASE_MS = 1_764_000_000_000


@pytest.fixture
def mlflow_url(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The service, with the MLflow client's process-wide tracking URI pointing at it."""
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with live_server({"MOMENTUM_DATABASE_URL": database_url}) as url:
        mlflow.set_tracking_uri(url)
        try:
            yield url
        finally:
            if mlflow.active_run() is not None:
                mlflow.end_run()
            mlflow.set_tracking_uri(None)  # type: ignore[arg-type]


def test_an_mlflow_script_logs_to_momentum_monitor_unchanged(mlflow_url: str) -> None:
    experiment = mlflow.set_experiment("mlflow-sweep")
    assert experiment.name == "mlflow-sweep" and experiment.experiment_id.isdigit()
    with mlflow.start_run(run_name="mu-0.9") as active:
        mlflow.log_params({"momentum": 0.9, "lr": 0.05, "optimizer": "momentum"})
        for step in range(1000):
            mlflow.log_metric("loss", 2.0 / (step + 1), step=step, timestamp=BASE_MS + step)
            accuracy = {"accuracy": step / 1000, "train/grad_norm": 1.0 + step}
            mlflow.log_metrics(accuracy, step=step, timestamp=BASE_MS + step)
        for step, value in enumerate([math.nan, math.inf, -math.inf]):
            mlflow.log_metric("divergence", value, step=step)
    run_id = active.info.run_id
    client = MlflowClient()

    history = client.get_metric_history(run_id, "loss")
    assert [(m.step, m.value, m.timestamp) for m in history] == [
        (step, 2.0 / (step + 1), BASE_MS + step) for step in range(1000)
    ]
    grad = client.get_metric_history(run_id, "train/grad_norm")
    assert [m.value for m in grad] == [1.0 + step for step in range(1000)]
    odd = [m.value for m in client.get_metric_history(run_id, "divergence")]
    assert math.isnan(odd[0]) and odd[1:] == [math.inf, -math.inf]

    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "mu-0.9"
    assert run.data.params == {"momentum": "0.9", "lr": "0.05", "optimizer": "momentum"}
    assert run.data.metrics["loss"] == 2.0 / 1000

    found = mlflow.search_runs(
        experiment_ids=[experiment.experiment_id],
        filter_string="params.momentum = '0.9'",
        output_format="list",
    )
    assert [r.info.run_id for r in found] == [run_id]
    none = mlflow.search_runs(
        experiment_ids=[experiment.experiment_id],
        filter_string="params.momentum = '0.5'",
        output_format="list",
    )
    assert none == []

    # The MLflow run is a native run: indexed momentum, comparable beside a native one.
    api = httpx.Client(base_url=f"{mlflow_url}/api/v1")
    native = api.post(
        "/runs",
        json={"name": "native", "project": "mlflow-sweep", "params": {"momentum": 0.5}},
    ).json()
    points = [{"key": "loss", "step": s, "value": 1.0 / (s + 1)} for s in range(500)]
    api.post(f"/runs/{native['id']}/metrics", json={"points": points}).raise_for_status()
    as_native = api.get(f"/runs/{run_id}").json()
    assert as_native["project"] == "mlflow-sweep"
    assert as_native["momentum"] == 0.9 and as_native["optimizer"] == "momentum"
    assert as_native["status"] == "succeeded" and as_native["diverged"] is False
    compared = api.get("/compare", params={"run_ids": f"{native['id']},{run_id}", "keys": "loss"})
    series = {item["run_id"]: item for item in compared.json()["series"]}
    assert series[int(run_id)]["steps"] == list(range(1000))
    assert series[int(run_id)]["values"][-1] == 2.0 / 1000
    assert len(series[native["id"]]["steps"]) == 500


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_mlflow_tracking_token_is_the_bearer_token(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    env = {"MOMENTUM_DATABASE_URL": database_url, "MOMENTUM_TOKEN": "full-secret"}
    with live_server(env) as url:
        client = MlflowClient(tracking_uri=url)
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "wrong")
        with pytest.raises(MlflowException) as refused:
            client.create_run("0")
        assert refused.value.error_code == "UNAUTHENTICATED"
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "full-secret")
        run = client.create_run("0", run_name="with-token")
        client.log_metric(run.info.run_id, "loss", 0.5, step=3)
        assert [m.value for m in client.get_metric_history(run.info.run_id, "loss")] == [0.5]
