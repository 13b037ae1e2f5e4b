"""LogShipper against httpx.MockTransport with the service's append rules: the service
down then up loses nothing, keeps order and stores nothing twice; writes never block."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import orjson

from momentum.client import Backoff, MomentumClient
from momentum.client.log_shipper import LogShipper

LEASE = "lease-1"


class FakeLogService:
    """POST /jobs/7/logs as the service answers it: a resend is a no-op, a gap a 409,
    a stale lease a 409 `lease_not_held`. `down` requests fail before arriving; `lose`
    are stored but their answer is lost on the way back."""

    def __init__(self, down: int = 0, lose: int = 0) -> None:
        self.stored = b""
        self.bodies: list[dict[str, Any]] = []
        self.down, self.lose = down, lose
        self.lease_held = True
        self.hold: threading.Event | None = None  # set: answer; clear: hang until set
        self.entered = threading.Event()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.entered.set()
        if self.hold is not None:
            self.hold.wait()
        if self.down > 0:
            self.down -= 1
            raise httpx.ConnectError("connection refused", request=request)
        body = orjson.loads(request.content)
        self.bodies.append(body)
        if not self.lease_held:
            error = {"code": "lease_not_held", "message": "no longer held", "detail": []}
            return httpx.Response(409, json={"error": error})
        data, offset = body["text"].encode(), body["offset"]
        assert offset <= len(self.stored), "a gap: the shipper skipped output"
        self.stored += data[len(self.stored) - offset :]
        if self.lose > 0:
            self.lose -= 1
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return httpx.Response(200, json={"received": len(self.stored)})


def shipper(service: FakeLogService, **options: Any) -> LogShipper:
    client = MomentumClient("http://svc", "t", transport=httpx.MockTransport(service))
    options.setdefault("interval_s", 0.01)
    return LogShipper(client, 7, LEASE, backoff=Backoff(0.0, 0.0), **options)


def test_down_then_up_loses_nothing_and_stores_nothing_twice() -> None:
    service = FakeLogService(down=5, lose=2)
    ship = shipper(service, max_batch_bytes=64)
    lines = [f"step {n} loss {1 / (n + 1):.4f} ✓\n" for n in range(200)]
    for line in lines:
        ship.write(line)
    assert ship.close(timeout_s=30)
    assert service.stored.decode() == "".join(lines)
    assert ship.stats.sent_bytes == len(service.stored) and ship.stats.failed_sends == 7
    assert all(len(body["text"].encode()) <= 64 for body in service.bodies)
    offsets = [body["offset"] for body in service.bodies]
    assert offsets == sorted(offsets) and offsets[0] == 0


def test_write_never_waits_for_a_hanging_service() -> None:
    service = FakeLogService()
    service.hold = threading.Event()
    ship = shipper(service)
    ship.write("first\n")
    assert service.entered.wait(10)  # the shipper's thread is stuck in its request
    for n in range(10_000):
        ship.write(f"line {n}\n")  # would hang here if a write waited for the service
    service.hold.set()
    assert ship.close(timeout_s=30)
    assert service.stored.decode() == "first\n" + "".join(f"line {n}\n" for n in range(10_000))


def test_past_the_memory_bound_the_oldest_waiting_text_is_dropped_and_said() -> None:
    service = FakeLogService()
    service.hold = threading.Event()
    ship = shipper(service, max_batch_bytes=1024, max_pending_bytes=4096)
    ship.write("start\n")
    assert service.entered.wait(10)
    lines = [f"{n:09d}\n" for n in range(1000)]  # 10,000 bytes while the service hangs
    for line in lines:
        ship.write(line)
    service.hold.set()
    assert not ship.close(timeout_s=30)  # something was dropped
    text = service.stored.decode()
    assert text.startswith("start\n[momentum: 5904 bytes of output dropped while the service")
    assert text.endswith("".join(lines[-409:])) and ship.stats.dropped_bytes == 5904
    assert ship.stats.sent_bytes == len(service.stored)


def test_a_lost_lease_stops_the_shipper() -> None:
    service = FakeLogService()
    service.lease_held = False
    ship = shipper(service)
    ship.write("too late\n")
    assert not ship.close(timeout_s=30)
    assert ship.stats.lease_lost and service.stored == b""
    ship.write("ignored\n")
    assert len(service.bodies) == 1


def test_text_is_cleaned_and_split_only_between_characters() -> None:
    service = FakeLogService()
    ship = shipper(service, max_batch_bytes=5)
    ship.write("a\x00b" + "€" * 7 + "\ud800")  # NUL and a lone surrogate cannot be stored
    assert ship.close(timeout_s=30)
    assert service.stored.decode() == "a\ufffdb" + "€" * 7 + "?"
    assert all(len(body["text"].encode()) <= 5 for body in service.bodies)
