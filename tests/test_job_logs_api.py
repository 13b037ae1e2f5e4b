"""Job logs through the API on both backends: append, read back, resend, fencing, the cap."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from service import Settings, create_app
from service.models import JobLog, JobLogChunk
from tests.jobs_support import API, assert_lease_lost, claim, expire_lease, submit

CAP = 64 * 1024


@pytest.fixture
def small_cap(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings.model_copy(update={"max_job_log_bytes": CAP}))) as client:
        yield client


def leased(client: TestClient) -> tuple[int, str]:
    job_id = submit(client)["id"]
    lease = claim(client)
    assert lease is not None and lease["job"]["id"] == job_id
    return job_id, lease["lease_token"]


def append(client: TestClient, job_id: int, token: str, offset: int, text: str) -> Any:
    body = {"lease_token": token, "offset": offset, "text": text}
    return client.post(f"{API}/jobs/{job_id}/logs", json=body)


def read(client: TestClient, job_id: int, offset: int = 0) -> dict[str, Any]:
    response = client.get(f"{API}/jobs/{job_id}/logs", params={"offset": offset})
    assert response.status_code == 200, response.text
    return response.json()


def read_all(client: TestClient, job_id: int) -> list[dict[str, Any]]:
    """Every page from offset 0 until caught up."""
    pages, offset = [], 0
    while True:
        page = read(client, job_id, offset)
        if not page["text"]:
            return pages
        pages.append(page)
        offset = page["next_offset"]


def test_appended_text_reads_back_in_order_by_byte_offsets(client: TestClient) -> None:
    job_id, token = leased(client)
    assert read(client, job_id) == {
        "offset": 0,
        "next_offset": 0,
        "text": "",
        "truncated": False,
        "dropped_bytes": 0,
        "size": 0,
    }
    first = "épochs: 1\n"  # 11 bytes: offsets count UTF-8 bytes, not characters
    assert append(client, job_id, token, 0, first).json() == {"received": 11}
    assert append(client, job_id, token, 11, "loss 0.5\n").json() == {"received": 20}
    page = read(client, job_id)
    assert (page["text"], page["offset"], page["next_offset"]) == (first + "loss 0.5\n", 0, 20)
    assert read(client, job_id, 11)["text"] == "loss 0.5\n"
    assert read(client, job_id, 20)["text"] == ""
    inside = read(client, job_id, 1)  # inside "é": the read starts at the next character
    assert (inside["offset"], inside["text"][:6]) == (2, "pochs:")
    past = client.get(f"{API}/jobs/{job_id}/logs", params={"offset": 21})
    assert past.status_code == 422 and past.json()["error"]["detail"][0]["loc"] == [
        "query",
        "offset",
    ]
    assert client.get(f"{API}/jobs/999/logs").status_code == 404


def test_a_resend_is_a_no_op_and_a_gap_is_refused(client: TestClient, engine: Engine) -> None:
    job_id, token = leased(client)
    append(client, job_id, token, 0, "abc\n")
    assert append(client, job_id, token, 0, "abc\n").json() == {"received": 4}
    assert append(client, job_id, token, 2, "c\ndef\n").json() == {"received": 8}  # overlap
    gap = append(client, job_id, token, 10, "zzz")
    assert gap.status_code == 409 and "send from 8" in gap.json()["error"]["message"]
    assert read(client, job_id)["text"] == "abc\ndef\n"
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(JobLogChunk)) == 2


def test_a_stale_lease_is_refused_and_a_retry_appends_after_a_header(
    client: TestClient, engine: Engine
) -> None:
    job_id, first_token = leased(client)
    append(client, job_id, first_token, 0, "attempt one\n")
    expire_lease(engine, job_id)
    second = claim(client, "w2")  # the lapsed job goes to another worker
    assert second is not None and second["job"]["attempts"] == 2
    assert_lease_lost(append(client, job_id, first_token, 12, "late\n"))
    assert_lease_lost(append(client, job_id, "not-the-token", 0, "x"))
    # The new attempt counts its own offsets from 0.
    assert append(client, job_id, second["lease_token"], 0, "attempt two\n").json() == {
        "received": 12
    }
    assert read(client, job_id)["text"] == "attempt one\n\n--- attempt 2 ---\nattempt two\n"
    done = {"lease_token": second["lease_token"]}
    assert client.post(f"{API}/jobs/{job_id}/complete", json=done).status_code == 200
    assert_lease_lost(append(client, job_id, second["lease_token"], 12, "after the end\n"))


def test_bad_appends_are_422s_that_store_nothing(client: TestClient, engine: Engine) -> None:
    job_id, token = leased(client)
    bad = [
        ({"lease_token": token, "offset": -1, "text": "x"}, ["offset"]),
        ({"lease_token": token, "offset": 0, "text": "a\u0000b"}, ["text"]),
        ({"lease_token": token, "offset": "0", "text": "x"}, ["offset"]),
        ({"lease_token": token, "text": "x"}, ["offset"]),
        ({"lease_token": token, "offset": 0, "text": "x", "extra": 1}, ["extra"]),
    ]
    for body, loc in bad:
        response = client.post(f"{API}/jobs/{job_id}/logs", json=body)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["detail"][0]["loc"] == loc
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(JobLog)) == 0


def test_the_read_token_reads_but_cannot_append(settings: Settings) -> None:
    secrets = {
        "token": SecretStr("full"),
        "worker_token": SecretStr("worker"),
        "read_token": SecretStr("read"),
    }
    with TestClient(create_app(settings.model_copy(update=secrets))) as client:
        client.headers["Authorization"] = "Bearer full"
        job_id, token = leased(client)
        body = {"lease_token": token, "offset": 0, "text": "hello\n"}
        path = f"{API}/jobs/{job_id}/logs"
        reader, worker = {"Authorization": "Bearer read"}, {"Authorization": "Bearer worker"}
        assert client.post(path, json=body, headers=reader).status_code == 403
        assert (
            client.post(path, json=body, headers={"Authorization": "Bearer x"}).status_code == 401
        )
        assert client.post(path, json=body, headers=worker).status_code == 200
        assert client.get(path, headers=reader).json()["text"] == "hello\n"


def test_ten_times_the_cap_keeps_the_head_and_the_newest_tail(
    small_cap: TestClient, engine: Engine
) -> None:
    """What a child printing far more than the cap leaves: its first half-cap of output,
    then its newest; reads skip the dropped middle and say so."""
    job_id, token = leased(small_cap)
    lines = [f"line {n:06d} {'é' * 20}\n" for n in range(10 * CAP // 52)]  # ~10 x the cap
    stream = "".join(lines).encode()
    offset, batch = 0, 40
    for at in range(0, len(lines), batch):
        text = "".join(lines[at : at + batch])
        assert append(small_cap, job_id, token, offset, text).status_code == 200
        offset += len(text.encode())
    pages = read_all(small_cap, job_id)
    assert len(pages) == 2  # the head, then (past the dropped middle) the tail
    head, tail = pages
    assert head["offset"] == 0 and head["truncated"]
    assert head["text"].encode() == stream[: head["next_offset"]]
    assert CAP // 2 - 4 < head["next_offset"] <= CAP // 2
    assert tail["next_offset"] == len(stream) == tail["size"]
    assert tail["text"].encode() == stream[tail["offset"] :]
    kept = len(head["text"].encode()) + len(tail["text"].encode())
    assert CAP - 4 < kept <= CAP
    assert tail["dropped_bytes"] == len(stream) - kept
    assert tail["text"].endswith(lines[-1])
    inside = read(small_cap, job_id, CAP)  # an offset in the dropped part
    assert inside["offset"] == tail["offset"] and inside["truncated"]
    with Session(engine) as session:
        log = session.get(JobLog, job_id)
        assert log is not None and log.stored_bytes == kept
        stored = session.scalar(select(func.sum(JobLogChunk.nbytes)))
        assert stored == kept


def test_one_append_larger_than_the_cap_keeps_its_start_and_end(small_cap: TestClient) -> None:
    job_id, token = leased(small_cap)
    text = "".join(f"{n:07d}\n" for n in range(CAP // 4))  # 2 x the cap in one append
    assert append(small_cap, job_id, token, 0, text).json() == {"received": len(text)}
    head, tail = read_all(small_cap, job_id)
    assert head["text"] == text[: CAP // 2]
    assert tail["text"] == text[-(CAP // 2) :] and tail["dropped_bytes"] == len(text) - CAP


def test_a_read_answers_at_most_one_mebibyte(client: TestClient) -> None:
    job_id, token = leased(client)
    text = "x" * 1023 + "\n"
    offset = 0
    for _ in range(3):
        append(client, job_id, token, offset, text * 512)  # 512 KiB a batch
        offset += 512 * 1024
    pages = read_all(client, job_id)
    assert [len(page["text"]) for page in pages] == [1024 * 1024, 512 * 1024]
    assert not pages[0]["truncated"]
