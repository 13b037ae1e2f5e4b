"""Metric ingest and history: big atomic batches, upsert, non-finite values, downsampling."""

from __future__ import annotations

import json
import math

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from service import Settings, create_app
from service.models import Series
from tests.factories import log_points, make_run, points, stored_point_count


def _history(client: TestClient, run_id: int, key: str, **query: object) -> dict:
    response = client.get(f"/api/v1/runs/{run_id}/metrics/{key}", params=query)
    assert response.status_code == 200, response.text
    return response.json()


def test_ten_thousand_points_many_keys_in_one_request(client: TestClient, engine: Engine) -> None:
    run = make_run(client)
    batch = [
        {"key": key, "step": step, "value": step * 0.5}
        for step in range(2500)
        for key in ("loss", "accuracy", "train/grad_norm", "lr")
    ]
    result = log_points(client, run["id"], batch)
    assert result["accepted"] == 10_000
    assert result["keys"] == ["accuracy", "loss", "lr", "train/grad_norm"]
    assert stored_point_count(engine) == 10_000
    history = _history(client, run["id"], "train/grad_norm")
    assert history["steps"] == list(range(2500))
    assert history["values"][:3] == [0.0, 0.5, 1.0]


def test_resent_batch_does_not_duplicate_and_last_value_wins(
    client: TestClient, engine: Engine
) -> None:
    run = make_run(client)
    log_points(client, run["id"], points("loss", range(100), 1.0))
    log_points(client, run["id"], points("loss", range(50, 150), 2.0))
    history = _history(client, run["id"], "loss")
    assert history["steps"] == list(range(150))
    assert history["values"][49:51] == [1.0, 2.0]
    assert stored_point_count(engine) == 150


def test_repeat_within_a_batch_keeps_the_last(client: TestClient) -> None:
    run = make_run(client)
    result = log_points(
        client, run["id"], [{"key": "loss", "step": 3, "value": v} for v in (1.0, 2.0, 3.0)]
    )
    assert result["accepted"] == 1
    assert _history(client, run["id"], "loss")["values"] == [3.0]


def test_one_bad_point_rejects_the_batch_and_names_it(client: TestClient, engine: Engine) -> None:
    run = make_run(client)
    batch = points("loss", range(5000))
    batch[1234] = {"key": "loss", "step": 1.5, "value": 1.0}  # any int64 is a step; 1.5 is none
    response = client.post(f"/api/v1/runs/{run['id']}/metrics", json={"points": batch})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["detail"][0]["loc"] == ["points", 1234, "step"]
    assert "points.1234.step" in error["message"]
    assert stored_point_count(engine) == 0


def test_bad_points_each_get_a_located_422(client: TestClient) -> None:
    run = make_run(client)
    cases = [
        ({"key": "", "step": 1, "value": 1}, "key"),
        ({"key": "k" * 251, "step": 1, "value": 1}, "key"),
        ({"key": "a,b", "step": 1, "value": 1}, "key"),
        ({"key": "loss", "step": 1.5, "value": 1}, "step"),
        ({"key": "loss", "step": "7", "value": 1}, "step"),
        ({"key": "loss", "step": 2**63, "value": 1}, "step"),
        ({"key": "loss", "step": 1, "value": "high"}, "value"),
        ({"key": "loss", "step": 1, "value": True}, "value"),
        ({"key": "loss", "step": 1, "value": 1, "wall_time": -1}, "wall_time"),
        ({"key": "loss", "step": 1, "value": 1, "colour": "red"}, "colour"),
        ({"step": 1, "value": 1}, "key"),
    ]
    for bad, field in cases:
        response = client.post(f"/api/v1/runs/{run['id']}/metrics", json={"points": [bad]})
        assert response.status_code == 422, bad
        assert response.json()["error"]["detail"][0]["loc"] == ["points", 0, field], bad
    empty = client.post(f"/api/v1/runs/{run['id']}/metrics", json={"points": []})
    assert empty.status_code == 422


def test_unknown_run_is_404(client: TestClient) -> None:
    response = client.post("/api/v1/runs/424242/metrics", json={"points": points("x", range(1))})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_body_over_the_limit_is_413_and_stores_nothing(settings: Settings, engine: Engine) -> None:
    small = settings.model_copy(update={"max_body_bytes": 64 * 1024})
    with TestClient(create_app(small)) as client:
        run = make_run(client)
        response = client.post(
            f"/api/v1/runs/{run['id']}/metrics", json={"points": points("loss", range(5000))}
        )
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "body_too_large"
        # A chunked body announces no length: the limit holds while it streams.
        chunks = (json.dumps({"points": points("loss", range(5000))}).encode(),)
        streamed = client.post(
            f"/api/v1/runs/{run['id']}/metrics",
            content=iter(chunks),
            headers={"content-type": "application/json"},
        )
        assert streamed.status_code == 413
    assert stored_point_count(engine) == 0


def test_too_many_points_is_413(settings: Settings, engine: Engine) -> None:
    capped = settings.model_copy(update={"max_points_per_batch": 10_000})
    with TestClient(create_app(capped)) as client:
        run = make_run(client)
        response = client.post(
            f"/api/v1/runs/{run['id']}/metrics", json={"points": points("loss", range(10_001))}
        )
        assert response.status_code == 413
        assert "split the batch" in response.json()["error"]["message"]
    assert stored_point_count(engine) == 0


def test_non_finite_values_round_trip_in_every_input_form(client: TestClient) -> None:
    run = make_run(client)
    raw = (
        '{"points": ['
        '{"key": "loss", "step": 0, "value": NaN},'
        '{"key": "loss", "step": 1, "value": Infinity},'
        '{"key": "loss", "step": 2, "value": -Infinity},'
        '{"key": "loss", "step": 3, "value": "NaN"},'
        '{"key": "loss", "step": 4, "value": "Infinity"},'
        '{"key": "loss", "step": 5, "value": "-Infinity"},'
        '{"key": "loss", "step": 6, "value": 1e308},'
        '{"key": "loss", "step": 7, "value": -0.0}]}'
    )
    response = client.post(
        f"/api/v1/runs/{run['id']}/metrics",
        content=raw,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 200, response.text
    history = client.get(f"/api/v1/runs/{run['id']}/metrics/loss")
    # Strict JSON: a browser's JSON.parse must read it, so no bare NaN tokens.
    decoded = json.loads(history.text, parse_constant=lambda token: pytest_fail(token))
    assert decoded["values"] == ["NaN", "Infinity", "-Infinity"] * 2 + [1e308, 0.0]
    listing = client.get(f"/api/v1/runs/{run['id']}/metrics").json()["items"][0]
    assert listing["last_value"] == 0.0
    run_view = client.get(f"/api/v1/runs/{run['id']}").json()
    assert run_view["diverged"] is True


def pytest_fail(token: str) -> None:
    raise AssertionError(f"response contains the non-JSON token {token}")


def test_nan_loss_marks_divergence_but_other_keys_do_not(client: TestClient) -> None:
    run = make_run(client)
    log_points(client, run["id"], [{"key": "grad_norm", "step": 1, "value": "Infinity"}])
    assert client.get(f"/api/v1/runs/{run['id']}").json()["diverged"] is False
    log_points(client, run["id"], [{"key": "train/loss", "step": 2, "value": "NaN"}])
    assert client.get(f"/api/v1/runs/{run['id']}").json()["diverged"] is True


def test_wall_time_defaults_to_receipt(client: TestClient) -> None:
    run = make_run(client)
    log_points(
        client,
        run["id"],
        [
            {"key": "x", "step": 0, "value": 1},
            {"key": "x", "step": 1, "value": 1, "wall_time": 5.5},
            {"key": "x", "step": 2, "value": 1, "wall_time": 0.0},
            {"key": "x", "step": 3, "value": 1, "wall_time": None},
        ],
    )
    wall_times = _history(client, run["id"], "x")["wall_times"]
    assert wall_times[0] > 1.7e9 and wall_times[1:3] == [5.5, 0.0]
    assert wall_times[3] == wall_times[0]  # one batch, one receipt time


def test_history_step_range_and_missing_series(client: TestClient) -> None:
    run = make_run(client)
    log_points(client, run["id"], points("loss", range(100)))
    ranged = _history(client, run["id"], "loss", start_step=10, end_step=19)
    assert ranged["steps"] == list(range(10, 20))
    assert ranged["total"] == 10 and ranged["downsampled"] is False
    missing = client.get(f"/api/v1/runs/{run['id']}/metrics/val_loss")
    assert missing.status_code == 404
    bad_key = client.get(f"/api/v1/runs/{run['id']}/metrics/a,b")
    assert bad_key.status_code == 422


def test_downsampled_history_keeps_extremes_and_divergence(client: TestClient) -> None:
    run = make_run(client)
    batch = points("loss", range(10_000), 1.0)
    batch[4321]["value"] = 50.0  # a spike
    batch[7777]["value"] = -3.0  # the best value
    batch[9000]["value"] = "NaN"
    log_points(client, run["id"], batch)
    history = _history(client, run["id"], "loss", max_points=100)
    assert len(history["steps"]) <= 100
    assert history["downsampled"] is True and history["total"] == 10_000
    shown = dict(zip(history["steps"], history["values"], strict=True))
    assert shown[4321] == 50.0 and shown[7777] == -3.0 and shown[9000] == "NaN"
    assert history["steps"] == sorted(history["steps"])


def test_series_list_reports_counts_and_ranges(client: TestClient, engine: Engine) -> None:
    run = make_run(client)
    log_points(client, run["id"], points("loss", range(3, 10)) + points("acc", range(2), 0.25))
    items = client.get(f"/api/v1/runs/{run['id']}/metrics").json()["items"]
    assert items == [
        {"key": "acc", "count": 2, "first_step": 0, "last_step": 1, "last_value": 0.25},
        {"key": "loss", "count": 7, "first_step": 3, "last_step": 9, "last_value": 0.1},
    ]
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Series)) == 2
    assert math.isclose(items[1]["last_value"], 1 / 10)
