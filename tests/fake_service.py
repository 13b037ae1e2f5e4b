"""An in-memory stand-in for the service's /api/v1 routes, served through httpx.MockTransport.

It validates bodies with the real contract models (so a badly encoded batch fails here as
it would on the service), upserts points on (run, key, step) like the service, and can be
switched down (connection refused), made to answer chosen error statuses, or made to
hang until released.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

import momentum
from momentum.client import ReporterOptions, Run
from momentum.contract import PointBatch, RunCreate, RunUpdate
from momentum.contract.values import encode_value
from tests.support import wait_until

__all__ = ["FakeService", "fast_options", "make_run", "wait_until"]

ROUTE = re.compile(r"^/api/v1/runs(?:/(\d+))?(?:/(heartbeat|metrics)(?:/(.+))?)?$")


@dataclass
class FakeService:
    down: bool = False
    fail_with: list[int] = field(default_factory=list)  # statuses answered next, in order
    fail_path: str = ""  # only requests whose path contains this get `fail_with`
    contract: str = momentum.CONTRACT_VERSION
    runs: dict[int, dict[str, Any]] = field(default_factory=dict)
    points: dict[int, dict[tuple[str, int], tuple[float, float | None]]] = field(
        default_factory=dict
    )
    batches: list[list[dict[str, Any]]] = field(default_factory=list)  # accepted, in order
    log: list[str] = field(default_factory=list)  # "METHOD path -> status", in order
    refused: int = 0  # requests answered with a connection error while down
    gate: threading.Event | None = None  # when set up, requests wait for it
    lock: threading.Lock = field(default_factory=threading.Lock)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        if self.gate is not None:
            self.gate.wait()
        with self.lock:
            if self.down:
                self.refused += 1
                raise httpx.ConnectError("connection refused (fake service is down)")
            response = self._route(request)
            self.log.append(f"{request.method} {request.url.path} -> {response.status_code}")
            return response

    def _route(self, request: httpx.Request) -> httpx.Response:
        if self.fail_with and self.fail_path in request.url.path:
            status = self.fail_with.pop(0)
            return _error(status, "fake_failure", f"injected {status}")
        if request.url.path == "/api/v1/version":
            return _json(
                200,
                {
                    "server": "fake",
                    "contract": self.contract,
                    "database": "memory",
                    "schema_revision": None,
                },
            )
        match = ROUTE.match(request.url.path)
        if match is None:
            return _error(404, "not_found", "no such route")
        run_id, action, key = match.groups()
        if run_id is None:
            return self._create(request)
        run = self.runs.get(int(run_id))
        if run is None:
            return _error(404, "not_found", f"run {run_id} does not exist")
        handlers: dict[tuple[str, str | None], Callable[[], httpx.Response]] = {
            ("GET", None): lambda: _json(200, self._public(run)),
            ("PATCH", None): lambda: self._update(run, request),
            ("POST", "heartbeat"): lambda: self._heartbeat(run),
            ("POST", "metrics"): lambda: self._ingest(run, request),
            ("GET", "metrics"): lambda: self._history(run, key),
        }
        handler = handlers.get((request.method, action))
        return handler() if handler else _error(405, "method_not_allowed", "no such method")

    def _create(self, request: httpx.Request) -> httpx.Response:
        body = RunCreate.model_validate_json(request.content)
        for run in self.runs.values():
            if body.external_id is not None and run["external_id"] == body.external_id:
                return _json(200, self._public(run))
        run_id = len(self.runs) + 1
        self.runs[run_id] = {
            **body.model_dump(mode="json"),
            "id": run_id,
            "name": body.name or f"run-{run_id}",
            "diverged": False,
            "heartbeats": 0,
        }
        self.points[run_id] = {}
        return _json(201, self._public(self.runs[run_id]))

    def _update(self, run: dict[str, Any], request: httpx.Request) -> httpx.Response:
        body = RunUpdate.model_validate_json(request.content)
        run.update(body.model_dump(mode="json", exclude_unset=True))
        return _json(200, self._public(run))

    def _heartbeat(self, run: dict[str, Any]) -> httpx.Response:
        run["heartbeats"] += 1
        now = datetime.now(UTC).isoformat()
        return _json(200, {"id": run["id"], "status": run["status"], "last_heartbeat_at": now})

    def _ingest(self, run: dict[str, Any], request: httpx.Request) -> httpx.Response:
        points = PointBatch.model_validate_json(request.content).points
        stored = self.points[run["id"]]
        for point in points:
            stored[(point["key"], point["step"])] = (float(point["value"]), point.get("wall_time"))
        self.batches.append([dict(point) for point in points])
        keys = sorted({point["key"] for point in points})
        return _json(200, {"run_id": run["id"], "accepted": len(points), "keys": keys})

    def _history(self, run: dict[str, Any], key: str | None) -> httpx.Response:
        rows = sorted((s, v) for (k, s), v in self.points[run["id"]].items() if k == key)
        return _json(
            200,
            {
                "key": key,
                "steps": [step for step, _ in rows],
                "values": [encode_value(value) for _, (value, _) in rows],
                "wall_times": [wall or 0.0 for _, (_, wall) in rows],
                "total": len(rows),
                "downsampled": False,
            },
        )

    def _public(self, run: dict[str, Any]) -> dict[str, Any]:
        now = datetime.now(UTC).isoformat()
        steps = [step for _, step in self.points.get(run["id"], {})]
        return {
            **{k: run[k] for k in ("id", "name", "project", "status", "diverged", "params")},
            **{k: run[k] for k in ("tags", "external_id")},
            "optimizer": None,
            "momentum": None,
            "lr": None,
            "sweep_id": None,
            "created_at": now,
            "updated_at": now,
            "started_at": now,
            "ended_at": None,
            "last_heartbeat_at": None,
            "last_step": max(steps, default=None),
            "latest": {},
        }

    # Helpers for assertions.

    def steps(self, run_id: int, key: str) -> list[int]:
        return sorted(step for k, step in self.points[run_id] if k == key)

    def value(self, run_id: int, key: str, step: int) -> float:
        return self.points[run_id][(key, step)][0]

    def sent_steps(self) -> list[int]:
        """Steps of every accepted point in the order they arrived (repeats kept)."""
        return [point["step"] for batch in self.batches for point in batch]


def _json(status: int, body: dict[str, Any]) -> httpx.Response:
    return httpx.Response(
        status, content=orjson.dumps(body), headers={"Content-Type": "application/json"}
    )


def _error(status: int, code: str, message: str) -> httpx.Response:
    return _json(status, {"error": {"code": code, "message": message, "detail": []}})


def fast_options(**overrides: Any) -> ReporterOptions:
    """Reporter options scaled down so tests take milliseconds, not seconds."""
    values: dict[str, Any] = {
        "flush_interval": 0.01,
        "backoff_base": 0.002,
        "backoff_max": 0.02,
        "close_timeout": 10.0,
        "heartbeat_interval": 3600.0,
    }
    return ReporterOptions(**{**values, **overrides})


def make_run(service: FakeService, spool_dir: Path, **overrides: Any) -> Run:
    """A Run talking to `service`; keyword arguments set Run fields or reporter options."""
    run_fields = {k: overrides.pop(k) for k in list(overrides) if k in RUN_FIELDS}
    run_fields.setdefault("name", "test-run")
    return Run(
        transport=service.transport(),
        spool_dir=spool_dir,
        options=fast_options(**overrides),
        **run_fields,
    )


RUN_FIELDS = {"name", "params", "project", "tags", "external_id", "client", "url", "token"}
