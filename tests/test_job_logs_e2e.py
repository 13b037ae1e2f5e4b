"""Job logs through a real `momentum serve` on both backends: the worker's LogShipper
ships output while the job runs, `momentum jobs logs ID` (a real CLI process) prints
it, and `--follow` prints new output as it comes and ends when the job ends."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import IO, Any

import httpx
import pytest

from momentum.client import MomentumClient
from momentum.client.log_shipper import LogShipper
from tests.jobs_support import TINY
from tests.support import live_server, wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture
def url(database_url: str) -> Iterator[str]:
    with live_server({"MOMENTUM_DATABASE_URL": database_url}) as base_url:
        yield base_url


def leased_job(client: MomentumClient) -> tuple[int, str]:
    """A queued job, claimed: (its id, the lease token)."""
    api = client.api
    created = httpx.post(f"{api}/jobs", json={"config": TINY}).json()
    claimed = httpx.post(f"{api}/jobs/claim", json={"worker_id": "w1"}).json()
    assert claimed["job"]["id"] == created["id"]
    return created["id"], claimed["lease_token"]


def momentum_cli(url: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "MOMENTUM_URL": url, "MOMENTUM_TOKEN": ""}
    argv = [sys.executable, "-m", "momentum.cli", *args]
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True, encoding="utf-8")


class Collected:
    """What a process printed so far, read by a thread (a pipe read blocks)."""

    def __init__(self, stream: IO[str] | None) -> None:
        assert stream is not None
        self.text = ""
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream: IO[str]) -> None:
        while chunk := stream.read(1):
            self.text += chunk


def test_shipped_output_is_printed_by_jobs_logs(url: str) -> None:
    with MomentumClient(url, "") as client:
        job_id, lease = leased_job(client)
        shipper = LogShipper(client, job_id, lease, interval_s=0.05)
        lines = [f"step {n} loss {1 / (n + 1):.5f} µ=0.9\n" for n in range(5000)]
        for line in lines:
            shipper.write(line)
        assert shipper.close(timeout_s=60)
        printed = momentum_cli(url, "jobs", "logs", str(job_id))
        out, _ = printed.communicate(timeout=60)
        assert printed.returncode == 0
        assert out == "".join(lines)
        page = client.job_logs(job_id)
        assert page.next_offset == len("".join(lines).encode()) and not page.truncated


def test_follow_prints_output_as_it_comes_and_ends_with_the_job(url: str) -> None:
    with MomentumClient(url, "") as client:
        job_id, lease = leased_job(client)
        shipper = LogShipper(client, job_id, lease, interval_s=0.05)
        follow = momentum_cli(url, "jobs", "logs", str(job_id), "--follow", "--interval", "0.1")
        out = Collected(follow.stdout)
        shipper.write("epoch 1\n")
        wait_until(lambda: out.text == "epoch 1\n", timeout=30)
        assert follow.poll() is None  # still following: the job runs
        shipper.write("epoch 2\n")
        assert shipper.close(timeout_s=30)
        done: dict[str, Any] = {"lease_token": lease}
        assert httpx.post(f"{client.api}/jobs/{job_id}/complete", json=done).status_code == 200
        assert follow.wait(timeout=30) == 0
        out.thread.join(10)
        assert out.text == "epoch 1\nepoch 2\n"


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_jobs_logs_marks_where_the_middle_was_dropped(database_url: str) -> None:
    env = {"MOMENTUM_DATABASE_URL": database_url, "MOMENTUM_MAX_JOB_LOG_BYTES": "4096"}
    with live_server(env) as base_url, MomentumClient(base_url, "") as client:
        job_id, lease = leased_job(client)
        lines = [f"{n:07d}\n" for n in range(2048)]  # 16 KiB: four times the cap
        for at in range(0, 2048, 256):
            client.append_job_log(job_id, lease, at * 8, "".join(lines[at : at + 256]))
        printed = momentum_cli(base_url, "jobs", "logs", str(job_id))
        out, _ = printed.communicate(timeout=60)
    head, marker, tail = out.partition(
        "[... 12288 bytes dropped: over the service's log cap ...]\n"
    )
    assert marker and head == "".join(lines[:256]) and tail == "".join(lines[-256:])
