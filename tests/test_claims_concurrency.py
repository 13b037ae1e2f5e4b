"""Concurrent claimers against a real server: every job is claimed exactly once."""

from __future__ import annotations

import threading
from collections import Counter

import httpx
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from service.models import Job
from tests.jobs_support import API, TINY
from tests.support import live_server

pytestmark = pytest.mark.e2e

JOBS = 100
CLAIMERS = 8


def _claim_until_empty(url: str, worker_id: str, claimed: list[int], errors: list[str]) -> None:
    """One worker: claim, complete, repeat until the server answers 204."""
    body = {"worker_id": worker_id, "device": "cpu", "frameworks": ["torch"]}
    with httpx.Client(base_url=url, timeout=60) as http:
        while True:
            response = http.post(f"{API}/jobs/claim", json=body)
            if response.status_code == 204:
                return
            if response.status_code != 200:
                errors.append(f"claim: {response.status_code} {response.text}")
                return
            lease = response.json()
            claimed.append(lease["job"]["id"])
            done = http.post(
                f"{API}/jobs/{lease['job']['id']}/complete",
                json={"lease_token": lease["lease_token"]},
            )
            if done.status_code != 200:
                errors.append(f"complete: {done.status_code} {done.text}")


def test_eight_claimers_take_every_job_exactly_once(database_url: str, engine: Engine) -> None:
    with live_server({"MOMENTUM_DATABASE_URL": database_url}) as url:
        with httpx.Client(base_url=url, timeout=30) as http:
            grid = {"seed": list(range(JOBS))}
            sweep = http.post(f"{API}/sweeps", json={"name": "race", "base": TINY, "grid": grid})
            assert sweep.status_code == 201, sweep.text
            submitted = set(sweep.json()["job_ids"])
        claimed: list[int] = []  # list.append is atomic under the GIL
        errors: list[str] = []
        threads = [
            threading.Thread(target=_claim_until_empty, args=(url, f"w{i}", claimed, errors))
            for i in range(CLAIMERS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    assert errors == []
    assert len(submitted) == JOBS
    duplicates = [job_id for job_id, n in Counter(claimed).items() if n > 1]
    assert duplicates == [] and set(claimed) == submitted
    with Session(engine) as session:
        rows = session.execute(select(Job.attempts, Job.status, Job.lease_owner)).all()
    assert Counter((attempts, status) for attempts, status, _ in rows) == {(1, "succeeded"): JOBS}
    # More than one worker took part: the claims really did run concurrently.
    assert len({owner for _, _, owner in rows}) > 1
