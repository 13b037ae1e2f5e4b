"""`momentum import mlflow --from sqlite:///…`: runs logged by the real MLflow client into
a real MLflow store (SQLite) arrive in a real service with their params, tags, status,
times and full metric histories; importing again creates no duplicates and sends only
values logged since.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from momentum.cli import main
from tests.test_log_adapters import sqlite_url  # noqa: F401 - the fixture: a live service

pytestmark = pytest.mark.e2e


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A real MLflow SQLite store holding two runs of experiment `mlflow-mom`, logged
    with MLflow's fluent API: one finished (a step logged twice with another value, a
    metric without a step), one failed."""
    import mlflow

    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("mlflow-mom")
    with mlflow.start_run(run_name="sgd-mu0.9"):
        mlflow.log_params({"optimizer": "sgd", "momentum": 0.9, "lr": 0.05})
        mlflow.set_tags({"team": "vision", "seed": "7"})
        for step in range(5):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metric("loss", 9.0, step=2)  # step 2 again: our rule moves it
        mlflow.log_metric("accuracy", 0.75)  # no step: step 0
    with mlflow.start_run(run_name="sgd-mu0.99"):
        mlflow.log_param("momentum", 0.99)
        mlflow.log_metrics({"loss": 2.0, "accuracy": 0.1}, step=0)
        mlflow.end_run(status="FAILED")
    mlflow.set_tracking_uri("")
    return uri


def run_import(server: str, uri: str) -> str:
    result = CliRunner().invoke(main, ["import", "mlflow", "--from", uri, "--url", server])
    assert result.exit_code == 0, result.output
    return result.output


def millis(moment: str | None) -> int | None:
    return None if moment is None else round(datetime.fromisoformat(moment).timestamp() * 1000)


def service_state(server: str) -> dict[str, Any]:
    """Each run of the project with its histories, read back through the service."""
    from mlflow import MlflowClient

    ours = MlflowClient(tracking_uri=server)
    with httpx.Client(base_url=f"{server}/api/v1", timeout=30) as api:
        runs = api.get("/runs", params={"project": "mlflow-mom"}).json()["items"]
    state = {}
    for run in runs:
        histories = {
            key: sorted(
                (m.step, m.value, m.timestamp) for m in ours.get_metric_history(str(run["id"]), key)
            )
            for key in ("loss", "accuracy")
        }
        state[run["name"]] = {**run, "histories": histories}
    return state


def test_mlflow_runs_are_imported_once_with_their_histories(
    sqlite_url: str,  # noqa: F811 - the fixture imported above
    store: str,
) -> None:
    from mlflow import MlflowClient

    server_url = sqlite_url

    source = MlflowClient(tracking_uri=store)
    (experiment,) = [e for e in source.search_experiments() if e.name == "mlflow-mom"]
    originals = {r.info.run_name: r for r in source.search_runs([experiment.experiment_id])}

    first = run_import(server_url, store)
    assert "2 runs (2 new), 9 metric values imported" in first
    state = service_state(server_url)
    assert set(state) == {"sgd-mu0.9", "sgd-mu0.99"}
    for name, original in originals.items():
        run = state[name]
        assert run["tags"]["momentum.import.mlflow_run_id"] == original.info.run_id
        assert {k: run["tags"][k] for k in original.data.tags} == original.data.tags
        assert {k: str(v) for k, v in run["params"].items()} == original.data.params
        assert millis(run["started_at"]) == original.info.start_time
        assert millis(run["ended_at"]) == original.info.end_time
        for key in ("loss", "accuracy"):
            history = source.get_metric_history(original.info.run_id, key)
            assert sorted((m.value, m.timestamp) for m in history) == sorted(
                (value, stamp) for _, value, stamp in run["histories"][key]
            )
    assert state["sgd-mu0.9"]["status"] == "succeeded"
    assert state["sgd-mu0.99"]["status"] == "failed"
    assert state["sgd-mu0.9"]["momentum"] == 0.9 and state["sgd-mu0.9"]["optimizer"] == "sgd"
    loss = [(step, value) for step, value, _ in state["sgd-mu0.9"]["histories"]["loss"]]
    assert loss == [(0, 1.0), (1, 0.5), (2, 1 / 3), (3, 0.25), (4, 0.2), (5, 9.0)]
    assert state["sgd-mu0.9"]["tags"]["momentum.moved_steps.loss"] == "1"

    second = run_import(server_url, store)
    assert "2 runs (0 new), 0 metric values imported" in second
    assert service_state(server_url) == state

    run_id = originals["sgd-mu0.9"].info.run_id
    source.log_metric(run_id, "loss", 0.1, step=5)  # the run grew in MLflow since
    assert "1 metric values imported" in run_import(server_url, store)
    grown = service_state(server_url)["sgd-mu0.9"]["histories"]["loss"]
    assert [(step, value) for step, value, _ in grown][-2:] == [(5, 9.0), (6, 0.1)]
