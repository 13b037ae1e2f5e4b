"""Real trainings on `ravine`, whose curvatures are known: heavy ball at μ=0.99 rings with
the period theory predicts; without momentum the same problem does not ring."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from momentum.contract.training import TrainingConfig
from service import Settings, create_app
from tests.factories import log_points
from trainer.numpy_loop import train
from trainer.results import RecordingSink

# Full-batch (the ravine's 1,024 training rows) and noise-free: the curve is the theory's.
RAVINE = {"framework": "numpy", "dataset": "ravine", "optimizer": "momentum", "batch_size": 1024}
LR, STEPS = 0.1, 500


@pytest.fixture
def api(sqlite_template: Path, tmp_path: Path) -> Iterator[TestClient]:
    database = tmp_path / "momentum.sqlite3"
    database.write_bytes(sqlite_template.read_bytes())
    settings = Settings(database_url=f"sqlite:///{database}", diagnosis_interval_s=0)
    with TestClient(create_app(settings)) as client:
        yield client


def _trained_run(api: TestClient, momentum: float) -> int:
    params = {**RAVINE, "momentum": momentum, "lr": LR, "steps": STEPS, "eval_every": 50}
    sink = RecordingSink()
    train(TrainingConfig.model_validate(params), sink)
    run_id = int(api.post("/api/v1/runs", json={"params": params}).json()["id"])
    batch = [
        {"key": key, "step": step, "value": value}
        for step, values in sink.rows
        for key, value in values.items()
    ]
    log_points(api, run_id, batch)
    return run_id


def test_ringing_heavy_ball_matches_theory_and_plain_descent_does_not_ring(api: TestClient) -> None:
    ringing = api.get(f"/api/v1/runs/{_trained_run(api, 0.99)}/diagnosis").json()
    oscillations = [f for f in ringing["findings"] if f["kind"] == "oscillation"]
    assert len(oscillations) == 1, ringing
    (found,) = oscillations
    theory = math.pi / math.acos((1 + 0.99 - LR) / (2 * math.sqrt(0.99)))
    assert found["detail"]["theoretical_period"] == pytest.approx(theory, abs=0.05)
    assert found["detail"]["period"] == pytest.approx(theory, rel=0.2)
    assert f"predicts {theory:.1f} steps" in found["message"]
    assert "μ=0.99" in found["advice"] and "lr=0.1" in found["advice"]

    calm = api.get(f"/api/v1/runs/{_trained_run(api, 0.0)}/diagnosis").json()
    assert calm["findings"] == []
