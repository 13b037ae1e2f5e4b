"""The indexed copies of params (service/indexed_params.py): one rule for /api/v1 and
MLflow's routes, so a run's `lr` column does not depend on the route that logged it."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.indexed_params import indexed_columns, indexed_number
from service.models import OPTIMIZER_LENGTH

MLFLOW = "/api/2.0/mlflow"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.9, 0.9),
        (3, 3.0),
        ("1e-3", 0.001),
        ("0.9", 0.9),
        ("NaN", None),
        ("Infinity", None),
        ("fast", None),
        ("", None),
        (True, None),
        (None, None),
        ([0.1], None),
        ({"a": 1}, None),
    ],
)
def test_numbers_and_their_text_fill_the_numeric_columns(value: Any, expected: Any) -> None:
    assert indexed_number(value) == expected


def test_an_optimizer_longer_than_its_column_stays_in_params_only() -> None:
    assert indexed_columns({"optimizer": "a" * OPTIMIZER_LENGTH})["optimizer"] is not None
    assert indexed_columns({"optimizer": "a" * (OPTIMIZER_LENGTH + 1)})["optimizer"] is None
    assert indexed_columns({"optimizer": 3}) == {"optimizer": None, "momentum": None, "lr": None}


def _columns(client: TestClient, run_id: int | str) -> tuple[Any, Any, Any]:
    run = client.get(f"/api/v1/runs/{run_id}").json()
    return run["optimizer"], run["momentum"], run["lr"]


TEXT_PARAMS = {"optimizer": "nesterov", "momentum": "0.9", "lr": "1e-3"}
FILLED = ("nesterov", 0.9, 0.001)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_text_lr_fills_the_column_through_api_v1(client: TestClient) -> None:
    created = client.post("/api/v1/runs", json={"params": TEXT_PARAMS})
    assert created.status_code == 201, created.text
    assert _columns(client, created.json()["id"]) == FILLED
    assert created.json()["params"]["lr"] == "1e-3"  # params keep what was sent
    patched = client.patch(f"/api/v1/runs/{created.json()['id']}", json={"params": {"lr": "x"}})
    assert patched.status_code == 200, patched.text
    assert _columns(client, created.json()["id"]) == (None, None, None)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_text_lr_fills_the_column_through_mlflow(client: TestClient) -> None:
    created = client.post(f"{MLFLOW}/runs/create", json={"experiment_id": "0"})
    run_id = created.json()["run"]["info"]["run_id"]
    params = [{"key": key, "value": value} for key, value in TEXT_PARAMS.items()]
    logged = client.post(f"{MLFLOW}/runs/log-batch", json={"run_id": run_id, "params": params})
    assert logged.status_code == 200, logged.text
    assert _columns(client, run_id) == FILLED
