"""Entry-point definitions and registrations for the service's tests, through the API."""

from __future__ import annotations

import copy
from typing import Any

import httpx
from fastapi.testclient import TestClient

from momentum.contract import EntryPointDefinition
from tests.jobs_support import API

# The issue's own example.
TRAIN: dict[str, Any] = {
    "command": ["python", "train.py"],
    "total_param": "steps",
    "params": {
        "momentum": {"type": "float", "default": 0.9, "min": 0.0, "max": 1.0},
        "lr": {"type": "float", "default": 0.01, "min": 0.0, "log": True},
        "seed": {"type": "int", "default": 0},
        "steps": {"type": "int", "default": 1000, "min": 1},
        "arch": {"type": "str", "default": "mlp", "choices": ["mlp", "cnn"]},
    },
}
TRAIN_DEFAULTS = {"momentum": 0.9, "lr": 0.01, "seed": 0, "steps": 1000, "arch": "mlp"}


def edited(**param_changes: dict[str, Any]) -> dict[str, Any]:
    """TRAIN with some params' specs changed (another digest)."""
    definition = copy.deepcopy(TRAIN)
    for name, changes in param_changes.items():
        definition["params"][name].update(changes)
    return definition


def digest_of(definition: dict[str, Any]) -> str:
    return EntryPointDefinition.model_validate(definition).compute_digest()


def registration(definition: dict[str, Any], worker_id: str | None = "w1") -> dict[str, Any]:
    body = {**definition, "digest": digest_of(definition)}
    return body if worker_id is None else {**body, "worker_id": worker_id}


def register(
    client: TestClient | httpx.Client,
    definition: dict[str, Any] = TRAIN,
    *,
    name: str = "train",
    worker_id: str | None = "w1",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return client.put(
        f"{API}/entry-points/{name}", json=registration(definition, worker_id), headers=headers
    )


def ref(definition: dict[str, Any] = TRAIN, name: str = "train") -> dict[str, str]:
    """What a worker lists in its claim for this definition."""
    return {"name": name, "digest": digest_of(definition)}


def claim_entry_points(
    client: TestClient | httpx.Client,
    refs: list[dict[str, str]],
    worker_id: str = "w1",
    frameworks: list[str] | None = None,
) -> dict[str, Any] | None:
    """The claim's body, or None when the server answered 204."""
    body = {
        "worker_id": worker_id,
        "device": "cpu",
        "frameworks": frameworks or ["torch"],
        "entry_points": refs,
    }
    response = client.post(f"{API}/jobs/claim", json=body)
    if response.status_code == 204:
        return None
    assert response.status_code == 200, response.text
    return response.json()
