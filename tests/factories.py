"""Small factories for test data, through the public API."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from service.models import Point, PointBlock, PointChunk


def make_run(client: TestClient, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": "run", "params": {"optimizer": "momentum", "momentum": 0.9}}
    body.update(overrides)
    response = client.post("/api/v1/runs", json=body)
    assert response.status_code in (200, 201), response.text
    return response.json()


def points(key: str, steps: range, value: Any = None) -> list[dict[str, Any]]:
    return [
        {"key": key, "step": step, "value": 1.0 / (step + 1) if value is None else value}
        for step in steps
    ]


def log_points(client: TestClient, run_id: int, batch: list[dict[str, Any]]) -> dict[str, Any]:
    response = client.post(f"/api/v1/runs/{run_id}/metrics", json={"points": batch})
    assert response.status_code == 200, response.text
    return response.json()


def stored_point_count(engine: Engine) -> int:
    """Points held in storage, as rows and inside blocks and chunks alike."""
    with Session(engine) as session:
        rows = session.scalar(select(func.count()).select_from(Point)) or 0
        in_blocks = session.scalar(select(func.coalesce(func.sum(PointBlock.count), 0))) or 0
        in_chunks = session.scalar(select(func.coalesce(func.sum(PointChunk.count), 0))) or 0
    return int(rows) + int(in_blocks) + int(in_chunks)
