"""Prometheus metrics for the service itself, kept in a registry per app instance."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api import operation_id


class Observability:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "momentum_http_requests",
            "HTTP requests by operation, method and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "momentum_http_request_duration_seconds",
            "Time to the end of the response, by operation.",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
        )
        self.points_ingested = Counter(
            "momentum_points_ingested", "Metric points stored.", registry=self.registry
        )


def _route_label(scope: Scope) -> str:
    # The router writes the matched route into the scope; its operation id names it
    # (e.g. "metrics-ingest_points"), a bounded label set unlike raw paths.
    route = scope.get("route")
    return operation_id(route) if hasattr(route, "name") else "unmatched"


class RequestMetrics:
    """Counts and times requests by route template (never raw paths: bounded labels)."""

    def __init__(self, app: ASGIApp, observability: Observability) -> None:
        self.app = app
        self.observability = observability

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = _route_label(scope)
            method = scope["method"]
            self.observability.requests.labels(method, route, str(status)).inc()
            self.observability.latency.labels(method, route).observe(time.perf_counter() - started)
