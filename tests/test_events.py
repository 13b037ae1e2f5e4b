"""The change feed: what writes an event, and GET /events through the real server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from service import events
from service.models import Event, utcnow
from tests.factories import log_points, make_run, points
from tests.jobs_support import API, claim, submit
from tests.sse import EventStream, Received, kinds
from tests.support import ServerProcess, live_server, wait_until


def stored(engine: Engine, after: int = 0) -> list[Event]:
    with Session(engine) as session:
        return list(session.scalars(select(Event).where(Event.id > after).order_by(Event.id)))


def test_each_batch_writes_one_points_event_with_each_keys_last_step(
    client: TestClient, engine: Engine
) -> None:
    run = make_run(client)
    before = events_latest(engine)
    batch = points("loss", range(0, 500)) + points("accuracy", range(0, 300))
    log_points(client, run["id"], batch)
    (event,) = stored(engine, before)
    assert (event.kind, event.run_id) == ("points", run["id"])
    assert event.payload == {
        "run_id": run["id"],
        "keys": {"accuracy": 299, "loss": 499},
        "last_step": 499,
    }


def test_a_refused_batch_writes_no_event(client: TestClient, engine: Engine) -> None:
    run = make_run(client)
    before = events_latest(engine)
    bad = client.post(f"{API}/runs/{run['id']}/metrics", json={"points": [{"key": "loss"}]})
    assert bad.status_code == 422
    assert (
        client.post(
            f"{API}/runs/999/metrics", json={"points": points("loss", range(3))}
        ).status_code
        == 404
    )
    assert stored(engine, before) == []


def test_divergence_and_run_status_changes_are_run_events(
    client: TestClient, engine: Engine
) -> None:
    run = make_run(client)
    before = events_latest(engine)
    log_points(client, run["id"], points("loss", range(2), value="NaN"))
    client.patch(f"{API}/runs/{run['id']}", json={"status": "succeeded"})
    run_events = [e.payload for e in stored(engine, before) if e.kind == "run"]
    assert run_events[0] == {"run_id": run["id"], "diverged": True}
    assert run_events[1]["status"] == "succeeded"


def test_job_lifecycle_writes_job_and_run_events(client: TestClient, engine: Engine) -> None:
    before = events_latest(engine)
    job = submit(client)
    claimed = claim(client)
    assert claimed is not None
    heartbeat = {"lease_token": claimed["lease_token"], "step": 3, "total": 5}
    client.post(f"{API}/jobs/{job['id']}/heartbeat", json=heartbeat)
    client.post(f"{API}/jobs/{job['id']}/cancel")
    feed = stored(engine, before)
    job_states = [
        (e.payload["status"], e.payload["progress_step"]) for e in feed if e.kind == "job"
    ]
    assert job_states == [("queued", None), ("running", None), ("running", 3), ("running", 3)]
    assert [e.payload["cancel_requested"] for e in feed if e.kind == "job"][-1] is True
    run_statuses = [e.payload["status"] for e in feed if e.kind == "run"]
    assert run_statuses == ["queued", "running"]
    assert all(e.run_id == job["run_id"] for e in feed)


def test_prune_drops_old_and_surplus_events_but_ids_keep_growing(
    client: TestClient, engine: Engine
) -> None:
    run = make_run(client)
    for step in range(5):
        log_points(client, run["id"], points("loss", range(step, step + 1)))
    with Session(engine) as session, session.begin():
        session.execute(update(Event).values(created_at=utcnow() - timedelta(hours=2)))
        assert events.prune(session, retention_s=3600, max_rows=100) == 6  # 5 + the run's
    log_points(client, run["id"], points("loss", range(5, 6)))
    (survivor,) = stored(engine)
    assert survivor.id == 7  # not reused after the table emptied (resuming clients rely on it)
    for step in range(6, 10):
        log_points(client, run["id"], points("loss", range(step, step + 1)))
    with Session(engine) as session, session.begin():
        events.prune(session, retention_s=3600, max_rows=2)
    assert [e.id for e in stored(engine)] == [10, 11]


def events_latest(engine: Engine) -> int:
    with Session(engine) as session:
        return events.latest_id(session)


# --- GET /events through the real server ---------------------------------------------


@contextmanager
def open_stream(
    url: str, headers: dict[str, str] | None = None, **params: Any
) -> Iterator[EventStream]:
    with (
        httpx.Client(base_url=url, timeout=httpx.Timeout(10.0)) as http,
        http.stream("GET", "/api/v1/events", params=params, headers=headers) as response,
    ):
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield EventStream(response)


def _post_points(url: str, run_id: int, steps: range, key: str = "loss") -> None:
    body = {"points": points(key, steps)}
    assert httpx.post(f"{url}{API}/runs/{run_id}/metrics", json=body).status_code == 200


def _new_run(url: str, name: str) -> int:
    return int(httpx.post(f"{url}{API}/runs", json={"name": name}).json()["id"])


def _points_of(run_id: int) -> Any:
    return lambda seen: any(e.kind == "points" and e.data["run_id"] == run_id for e in seen)


@pytest.mark.e2e
def test_stream_delivers_points_run_and_job_events_resumes_and_filters(database_url: str) -> None:
    with live_server({"MOMENTUM_DATABASE_URL": database_url}) as url:
        with open_stream(url) as stream:
            first = _new_run(url, "first")
            _post_points(url, first, range(0, 100))
            job = httpx.post(f"{url}{API}/jobs", json={"config": {"steps": 5}}).json()
            stream.until(lambda seen: len(kinds(seen, "job")) >= 1 and _points_of(first)(seen))
        (run_event,) = [e for e in kinds(stream.seen, "run") if e.data["run_id"] == first]
        assert run_event.data["status"] == "running"
        points_event = kinds(stream.seen, "points")[0]
        assert points_event.data == {"run_id": first, "keys": {"loss": 99}, "last_step": 99}
        assert kinds(stream.seen, "job")[0].data["job_id"] == job["id"]
        ids = [e.id for e in stream.seen]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)

        # Resume: events after the one given, in order, none before it.
        resume_at = points_event.id
        assert resume_at is not None
        second = _new_run(url, "second")
        _post_points(url, first, range(100, 200))
        _post_points(url, second, range(0, 10))
        with open_stream(url, headers={"Last-Event-ID": str(resume_at)}) as resumed:
            resumed.until(_points_of(second))
        assert all(e.id is not None and e.id > resume_at for e in resumed.seen)
        assert kinds(resumed.seen, "job")[0].data["job_id"] == job["id"]
        last_steps = [e.data["last_step"] for e in kinds(resumed.seen, "points")]
        assert last_steps == [199, 9]

        # run_ids: only those runs' events, from the start position onwards.
        with open_stream(url, run_ids=str(second)) as filtered:
            _post_points(url, first, range(200, 300))
            _post_points(url, second, range(10, 20))
            filtered.until(_points_of(second))
        assert [e.data["run_id"] for e in filtered.seen] == [second]
        assert filtered.seen[0].data["last_step"] == 19


@pytest.mark.e2e
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_change_through_one_replica_reaches_streams_on_another(database_url: str) -> None:
    env = {"MOMENTUM_DATABASE_URL": database_url}
    with ServerProcess(env) as writer, ServerProcess(env) as reader:
        writer_url, reader_url = writer.start(), reader.start()
        with open_stream(reader_url) as stream:
            run_id = _new_run(writer_url, "elsewhere")
            _post_points(writer_url, run_id, range(0, 42))
            stream.until(_points_of(run_id))
        assert kinds(stream.seen, "points")[-1].data["last_step"] == 41


@pytest.mark.e2e
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_stream_takes_a_query_token_and_a_gone_client_frees_its_slot(database_url: str) -> None:
    env = {
        "MOMENTUM_DATABASE_URL": database_url,
        "MOMENTUM_READ_TOKEN": "read-secret",
        "MOMENTUM_MAX_EVENT_STREAMS": "1",
    }
    with live_server(env) as url:
        assert httpx.get(f"{url}{API}/events").status_code == 401
        assert httpx.get(f"{url}{API}/events", params={"token": "wrong"}).status_code == 401
        with open_stream(url, token="read-secret") as stream:
            busy = httpx.get(f"{url}{API}/events", params={"token": "read-secret"})
            assert busy.status_code == 503
            assert busy.json()["error"]["code"] == "too_many_streams"
            assert stream.response.status_code == 200
        # The first client hung up: its stream ends and its slot is free again.
        wait_until(lambda: _stream_opens(url), timeout=10)


def _stream_opens(url: str) -> bool:
    with (
        httpx.Client(timeout=5) as http,
        http.stream("GET", f"{url}{API}/events", params={"token": "read-secret"}) as response,
    ):
        return response.status_code == 200


@pytest.mark.e2e
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_an_unknown_last_event_id_gets_a_reset(database_url: str) -> None:
    with live_server({"MOMENTUM_DATABASE_URL": database_url}) as url:
        run_id = _new_run(url, "r")
        with open_stream(url, headers={"Last-Event-ID": "999999"}) as stream:
            _post_points(url, run_id, range(0, 3))
            stream.until(_points_of(run_id))
        reset: Received = stream.seen[0]
        assert reset.kind == "reset"
        assert stream.seen[1].id is not None and reset.id is not None
        assert stream.seen[1].id > reset.id
        bad = httpx.get(f"{url}{API}/events", headers={"Last-Event-ID": "x"})
        assert bad.status_code == 422
