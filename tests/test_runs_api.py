"""Runs API: create, idempotency, filters, sort, pagination, patch, delete, heartbeat."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from service.models import Run, Sweep, utcnow
from service.storage.runs import fail_silent_runs
from tests.factories import log_points, make_run, points, stored_point_count


def test_create_fills_defaults_and_indexed_params(client: TestClient) -> None:
    response = client.post("/api/v1/runs", json={"params": {"optimizer": "adam", "lr": 0.01}})
    assert response.status_code == 201
    run = response.json()
    assert run["name"] == f"run-{run['id']}"
    assert run["project"] == "default"
    assert run["status"] == "running"
    assert run["diverged"] is False
    assert (run["optimizer"], run["momentum"], run["lr"]) == ("adam", None, 0.01)
    assert run["created_at"].endswith("Z")
    assert run["last_step"] is None and run["latest"] == {}


def test_repeated_external_id_returns_the_same_run(client: TestClient) -> None:
    first = client.post("/api/v1/runs", json={"name": "a", "external_id": "job-7-attempt-1"})
    again = client.post("/api/v1/runs", json={"name": "b", "external_id": "job-7-attempt-1"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["name"] == "a"
    assert client.get("/api/v1/runs").json()["total"] == 1


def test_unknown_body_field_is_rejected(client: TestClient) -> None:
    response = client.post("/api/v1/runs", json={"name": "a", "parms": {}})
    assert response.status_code == 422
    assert response.json()["error"]["detail"][0]["loc"] == ["parms"]


def _ids(client: TestClient, **query: object) -> list[int]:
    response = client.get("/api/v1/runs", params=query)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


def test_list_filters(client: TestClient, engine: Engine) -> None:
    slow = make_run(
        client, name="slow sgd", project="p1", params={"optimizer": "sgd", "momentum": 0}
    )
    mid = make_run(
        client,
        name="mid",
        project="p1",
        tags={"team": "vision"},
        params={"optimizer": "momentum", "momentum": 0.5, "dataset": "digits"},
    )
    fast = make_run(
        client,
        name="FAST heavy ball",
        project="p2",
        status="succeeded",
        params={"optimizer": "momentum", "momentum": 0.9, "dataset": "ravine"},
    )
    with Session(engine) as session, session.begin():
        sweep = Sweep(name="s", base={}, grid={})
        session.add(sweep)
        session.flush()
        session.execute(update(Run).where(Run.id == mid["id"]).values(sweep_id=sweep.id))
        sweep_id = sweep.id

    assert set(_ids(client, project="p1")) == {slow["id"], mid["id"]}
    assert _ids(client, status="succeeded") == [fast["id"]]
    assert set(_ids(client, optimizer="momentum")) == {mid["id"], fast["id"]}
    assert _ids(client, momentum_min=0.4, momentum_max=0.6) == [mid["id"]]
    assert _ids(client, momentum_min=0.9) == [fast["id"]]
    assert _ids(client, sweep_id=sweep_id) == [mid["id"]]
    assert _ids(client, tag="team:vision") == [mid["id"]]
    assert _ids(client, tag="team:audio") == []
    assert _ids(client, param="momentum:0.9") == [fast["id"]]
    assert _ids(client, param="dataset:digits") == [mid["id"]]
    assert _ids(client, param=["optimizer:momentum", "dataset:ravine"]) == [fast["id"]]
    assert _ids(client, q="heavy") == [fast["id"]]
    assert _ids(client, q="fast") == [fast["id"]]  # case-insensitive
    assert _ids(client, q="%") == []  # LIKE wildcards are literal
    assert set(_ids(client, ids=f"{fast['id']},{slow['id']},999999")) == {fast["id"], slow["id"]}
    assert _ids(client, ids=f"{fast['id']},{slow['id']}", project="p1") == [slow["id"]]


def test_the_ids_filter_is_bounded_and_says_what_is_wrong(client: TestClient) -> None:
    """`ids` takes what a comparison may name (a whole sweep at most), as run_ids does."""
    made = make_run(client)["id"]
    for bad, says in (
        ("1,x", "'x' is not a run id"),
        (",".join(map(str, range(1, 258))), "257 runs"),
    ):
        response = client.get("/api/v1/runs", params={"ids": bad})
        assert response.status_code == 422, response.text
        assert says in response.text and "ids" in response.text
    assert _ids(client, ids=str(made), lifecycle="all") == [made]


def test_sort_and_pagination(client: TestClient) -> None:
    made = [
        make_run(client, name=name, params={"momentum": mu})
        for name, mu in [("c", 0.5), ("a", 0.99), ("b", 0.0)]
    ]
    ids = [run["id"] for run in made]
    assert _ids(client, sort="created_at") == ids
    assert _ids(client, sort="-created_at") == ids[::-1]
    assert _ids(client) == ids[::-1]
    assert _ids(client, sort="name") == [ids[1], ids[2], ids[0]]
    assert _ids(client, sort="momentum") == [ids[2], ids[0], ids[1]]
    page = client.get("/api/v1/runs", params={"sort": "created_at", "limit": 2, "offset": 1}).json()
    assert [item["id"] for item in page["items"]] == ids[1:]
    assert (page["total"], page["limit"], page["offset"]) == (3, 2, 1)


def test_bad_list_queries_are_422(client: TestClient) -> None:
    for query in (
        {"sort": "loss"},
        {"limit": 1001},
        {"limit": 0},
        {"status": "done"},
        {"tag": "x"},
    ):
        response = client.get("/api/v1/runs", params=query)
        assert response.status_code == 422, query
        assert response.json()["error"]["code"] in ("validation_error", "unknown_query_parameter")


def test_list_items_carry_last_step_and_latest(client: TestClient) -> None:
    run = make_run(client)
    log_points(client, run["id"], points("loss", range(5)) + points("accuracy", range(3), 0.5))
    item = client.get("/api/v1/runs").json()["items"][0]
    assert item["last_step"] == 4
    assert item["latest"] == {"loss": 0.2, "accuracy": 0.5}


def _values(key: str, values: list[object], start: int = 0) -> list[dict[str, object]]:
    return [{"key": key, "step": start + i, "value": v} for i, v in enumerate(values)]


def test_list_items_carry_best_loss_and_accuracy_ignoring_non_finite(client: TestClient) -> None:
    steady, unstable = make_run(client, name="steady"), make_run(client, name="unstable")
    log_points(client, steady["id"], _values("train/loss", [3.0, 1.0, 2.0]))
    log_points(client, steady["id"], _values("val_accuracy", [0.2, 0.9, 0.7]))
    log_points(client, steady["id"], _values("lr", [0.1, 0.01]))  # no better direction
    log_points(client, unstable["id"], _values("loss", [2.0, "-Infinity", 0.5, "NaN"]))
    # A late rewrite of the best step changes the best.
    log_points(client, steady["id"], [{"key": "train/loss", "step": 1, "value": 1.5}])
    items = {item["name"]: item for item in client.get("/api/v1/runs").json()["items"]}
    assert items["steady"]["best"] == {"train/loss": 1.5, "val_accuracy": 0.9}
    assert items["unstable"]["best"] == {"loss": 0.5}
    assert items["unstable"]["latest"] == {"loss": "NaN"}
    assert client.get(f"/api/v1/runs/{unstable['id']}").json()["best"] == {"loss": 0.5}


def test_get_patch_and_status_times(client: TestClient) -> None:
    run = make_run(client)
    assert client.get(f"/api/v1/runs/{run['id']}").json()["ended_at"] is None
    patched = client.patch(
        f"/api/v1/runs/{run['id']}",
        json={
            "status": "succeeded",
            "name": "renamed",
            "tags": {"k": "v"},
            "params": {"optimizer": "nesterov", "momentum": 0.8},
        },
    )
    assert patched.status_code == 200
    body = patched.json()
    assert (body["status"], body["name"], body["tags"]) == ("succeeded", "renamed", {"k": "v"})
    assert (body["optimizer"], body["momentum"]) == ("nesterov", 0.8)
    assert body["ended_at"] is not None
    assert client.patch(f"/api/v1/runs/{run['id']}", json={"status": "bogus"}).status_code == 422
    assert client.get("/api/v1/runs/999999").status_code == 404


def test_delete_removes_series_and_points(client: TestClient, engine: Engine) -> None:
    keep, doomed = make_run(client), make_run(client)
    log_points(client, keep["id"], points("loss", range(10)))
    log_points(client, doomed["id"], points("loss", range(20)))
    assert client.delete(f"/api/v1/runs/{doomed['id']}").status_code == 204
    assert client.get(f"/api/v1/runs/{doomed['id']}").status_code == 404
    assert client.delete(f"/api/v1/runs/{doomed['id']}").status_code == 404
    assert stored_point_count(engine) == 10


def test_heartbeat_and_silent_runs_fail(client: TestClient, engine: Engine) -> None:
    run = make_run(client, status="queued")
    beat = client.post(f"/api/v1/runs/{run['id']}/heartbeat")
    assert beat.status_code == 200
    assert beat.json()["status"] == "running"
    quiet = make_run(client)  # never heartbeats: not subject to the timeout
    with Session(engine) as session, session.begin():
        stale = utcnow() - timedelta(seconds=120)
        session.execute(update(Run).where(Run.id == run["id"]).values(last_heartbeat_at=stale))
        assert fail_silent_runs(session, timeout_s=60) == 1
    assert client.get(f"/api/v1/runs/{run['id']}").json()["status"] == "failed"
    assert client.get(f"/api/v1/runs/{quiet['id']}").json()["status"] == "running"
