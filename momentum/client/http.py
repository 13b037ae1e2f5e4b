"""`MomentumClient`: one method per endpoint the SDK, the reporter and the CLI use.

Synchronous httpx with explicit timeouts. The httpx client (or just its transport) can
be passed in, so tests run against `httpx.MockTransport` and callers can share pools.
Imports neither FastAPI, SQLAlchemy nor torch.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, BinaryIO

import httpx

import momentum
from momentum.client.encoding import encode_body, encode_point_dicts, query_params
from momentum.client.jobs import JobMethods
from momentum.client.verdict import VerdictMethods
from momentum.contract import (
    CompareResult,
    CompareSummary,
    Diagnosis,
    GroupComparison,
    IngestResult,
    Page,
    RunCreate,
    RunHeartbeat,
    RunPublic,
    RunUpdate,
    SeriesHistory,
    SeriesList,
    VersionInfo,
)

DEFAULT_URL = "http://127.0.0.1:8000"
# Connecting to a live service takes milliseconds; a slow answer to a large batch can
# legitimately take seconds, so reads and writes get longer than the connect phase.
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0, pool=5.0)
JSON_HEADERS = {"Content-Type": "application/json"}
# Worth another try: the service is restarting, overloaded or behind a proxy that is.
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class ContractMismatchWarning(UserWarning):
    """The service speaks another version of the wire contract than this client."""


class MomentumAPIError(Exception):
    """The service answered with an error (`{"error": {"code", "message", "detail"}}`)."""

    def __init__(
        self, status_code: int, code: str, message: str, detail: list[Any] | None = None
    ) -> None:
        super().__init__(f"{status_code} {code}: {message}")
        self.status_code = status_code
        self.code = code
        self.message = message
        self.detail = detail or []

    @property
    def retryable(self) -> bool:
        return self.status_code in RETRYABLE_STATUSES

    @classmethod
    def from_response(cls, response: httpx.Response) -> MomentumAPIError:
        try:
            error = response.json()["error"]
            return cls(response.status_code, error["code"], error["message"], error.get("detail"))
        except (ValueError, KeyError, TypeError):
            text = response.text[:300] or response.reason_phrase
            return cls(response.status_code, "http_error", text)


def is_retryable(exc: BaseException) -> bool:
    """A network failure or an answer saying "later": resending is safe and may succeed."""
    if isinstance(exc, MomentumAPIError):
        return exc.retryable
    return isinstance(exc, httpx.TransportError)


def resolve_url(url: str | None) -> str:
    return (url or os.environ.get("MOMENTUM_URL") or DEFAULT_URL).rstrip("/")


def resolve_token(token: str | None) -> str | None:
    return token if token is not None else (os.environ.get("MOMENTUM_TOKEN") or None)


class MomentumClient(JobMethods, VerdictMethods):
    """A thin, typed client of the `/api/v1` routes. Thread-safe (httpx.Client is).

    `url` and `token` default to `MOMENTUM_URL` (else http://127.0.0.1:8000) and
    `MOMENTUM_TOKEN`. Pass `http` (an httpx.Client; it stays yours to close) or
    `transport` (e.g. `httpx.MockTransport`) to control how requests travel.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        http: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = resolve_url(url)
        self.api = f"{self.url}/api/v1"
        self.timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        token = resolve_token(token)
        self._auth = {"Authorization": f"Bearer {token}"} if token else {}
        self._owns_http = http is None
        self.http = http or httpx.Client(timeout=self.timeout, transport=transport)

    def close(self) -> None:
        if self._owns_http:
            self.http.close()

    def __enter__(self) -> MomentumClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        params: Mapping[str, Any] | None = None,
        timeout: httpx.Timeout | float | None = None,
    ) -> httpx.Response:
        """One call; raises `MomentumAPIError` on an error status, httpx errors on failure."""
        headers = {**self._auth, **JSON_HEADERS} if content is not None else self._auth
        response = self.http.request(
            method,
            f"{self.api}{path}",
            content=content,
            params=params,
            headers=headers,
            timeout=self.timeout if timeout is None else timeout,
        )
        if response.status_code >= 400:
            raise MomentumAPIError.from_response(response)
        return response

    def create_run(self, body: RunCreate | None = None, **fields: Any) -> RunPublic:
        """Create a run (or get the one with this `external_id`)."""
        return self.create_run_raw(_body(RunCreate, body, fields))[0]

    def create_run_raw(
        self, body: bytes, timeout: httpx.Timeout | float | None = None
    ) -> tuple[RunPublic, bool]:
        """Create from an encoded RunCreate; returns (run, created): False means it existed."""
        response = self.request("POST", "/runs", content=body, timeout=timeout)
        return RunPublic.model_validate_json(response.content), response.status_code == 201

    def get_run(self, run_id: int, timeout: httpx.Timeout | float | None = None) -> RunPublic:
        response = self.request("GET", f"/runs/{run_id}", timeout=timeout)
        return RunPublic.model_validate_json(response.content)

    def list_runs(
        self,
        *,
        project: str | None = None,
        status: str | None = None,
        sweep_id: int | None = None,
        limit: int = 50,
    ) -> Page[RunPublic]:
        """Runs, newest first."""
        params = {"project": project, "status": status, "sweep_id": sweep_id, "limit": limit}
        response = self.request("GET", "/runs", params=query_params(params))
        return Page[RunPublic].model_validate_json(response.content)

    def update_run(
        self, run_id: int, body: RunUpdate | bytes | None = None, **fields: Any
    ) -> RunPublic:
        """PATCH the run: status, diverged, name, params or tags."""
        content = body if isinstance(body, bytes) else _body(RunUpdate, body, fields)
        response = self.request("PATCH", f"/runs/{run_id}", content=content)
        return RunPublic.model_validate_json(response.content)

    def log_points(
        self,
        run_id: int,
        points: Sequence[Mapping[str, Any]] | bytes,
        timeout: httpx.Timeout | float | None = None,
    ) -> IngestResult:
        """Send one batch: point dicts (NaN/±Inf become their strings) or an encoded body."""
        content = points if isinstance(points, bytes) else encode_point_dicts(points)
        response = self.request("POST", f"/runs/{run_id}/metrics", content=content, timeout=timeout)
        return IngestResult.model_validate_json(response.content)

    def heartbeat(self, run_id: int, timeout: httpx.Timeout | float | None = None) -> RunHeartbeat:
        response = self.request("POST", f"/runs/{run_id}/heartbeat", timeout=timeout)
        return RunHeartbeat.model_validate_json(response.content)

    def list_series(self, run_id: int) -> SeriesList:
        return SeriesList.model_validate_json(
            self.request("GET", f"/runs/{run_id}/metrics").content
        )

    def diagnose(self, run_id: int, key: str = "loss") -> Diagnosis:
        """What the run's `key` curve shows (oscillation, plateau, ...) and what helps."""
        response = self.request("GET", f"/runs/{run_id}/diagnosis", params={"key": key})
        return Diagnosis.model_validate_json(response.content)

    def get_history(
        self,
        run_id: int,
        key: str,
        *,
        start_step: int | None = None,
        end_step: int | None = None,
        max_points: int | None = None,
    ) -> SeriesHistory:
        """One series as columns; values keep "NaN"/"Infinity" (see `decode_value`)."""
        params = {"start_step": start_step, "end_step": end_step, "max_points": max_points}
        response = self.request("GET", f"/runs/{run_id}/metrics/{key}", params=query_params(params))
        return SeriesHistory.model_validate_json(response.content)

    def compare(
        self,
        run_ids: Sequence[int],
        keys: Sequence[str],
        *,
        x: str = "step",
        smoothing: float | None = None,
        max_points: int | None = None,
        start_step: int | None = None,
        end_step: int | None = None,
    ) -> CompareResult:
        """Several runs' series, each on its own steps; `smoothed` when smoothing is given."""
        params = {
            "run_ids": _ids(run_ids),
            "keys": ",".join(keys),
            "x": x,
            "smoothing": smoothing,
            "max_points": max_points,
            "start_step": start_step,
            "end_step": end_step,
        }
        response = self.request("GET", "/compare", params=query_params(params))
        return CompareResult.model_validate_json(response.content)

    def compare_summary(
        self,
        run_ids: Sequence[int],
        key: str,
        *,
        mode: str = "min",
        threshold: float | None = None,
        baseline: int | None = None,
    ) -> CompareSummary:
        """Per-run final/best/tail mean/steps to threshold/AUC/speedup and a ranking."""
        params = {"run_ids": _ids(run_ids), "key": key, "mode": mode}
        params.update(query_params({"threshold": threshold, "baseline": baseline}))
        response = self.request("GET", "/compare/summary", params=params)
        return CompareSummary.model_validate_json(response.content)

    def compare_groups(
        self,
        run_ids: Sequence[int],
        key: str,
        *,
        by: str = "momentum",
        mode: str = "min",
        threshold: float | None = None,
        max_points: int | None = None,
    ) -> GroupComparison:
        """Runs grouped by a parameter: mean curves with spread, and the best setting."""
        params = {"run_ids": _ids(run_ids), "by": by, "threshold": threshold}
        return self._groups("/compare/groups", params, key, mode, max_points)

    def sweep_summary(
        self,
        sweep_id: int,
        key: str,
        *,
        by: str | None = None,
        mode: str = "min",
        threshold: float | None = None,
        max_points: int | None = None,
    ) -> GroupComparison:
        """A sweep's runs grouped by a grid field (default: momentum)."""
        params = {"by": by, "threshold": threshold}
        return self._groups(f"/sweeps/{sweep_id}/summary", params, key, mode, max_points)

    def _groups(
        self, path: str, params: dict[str, Any], key: str, mode: str, max_points: int | None
    ) -> GroupComparison:
        params = query_params({**params, "key": key, "mode": mode, "max_points": max_points})
        return GroupComparison.model_validate_json(self.request("GET", path, params=params).content)

    def export_csv(
        self, run_ids: Sequence[int], out: BinaryIO, keys: Sequence[str] | None = None
    ) -> int:
        """Stream the long-format CSV export into `out` as it arrives; returns bytes written."""
        params = {"run_ids": _ids(run_ids)}
        if keys is not None:
            params["keys"] = ",".join(keys)
        written = 0
        with self.http.stream(
            "GET", f"{self.api}/export.csv", params=params, headers=self._auth
        ) as response:
            if response.status_code >= 400:
                response.read()
                raise MomentumAPIError.from_response(response)
            for chunk in response.iter_bytes():
                out.write(chunk)
                written += len(chunk)
        return written

    def version(self, *, check: bool = True) -> VersionInfo:
        """The service's versions; warns (`ContractMismatchWarning`) if the contract differs."""
        info = VersionInfo.model_validate_json(self.request("GET", "/version").content)
        if check and info.contract != momentum.CONTRACT_VERSION:
            warnings.warn(
                f"the service at {self.url} speaks contract {info.contract!r}, this client "
                f"{momentum.CONTRACT_VERSION!r}: upgrade whichever side is older",
                ContractMismatchWarning,
                stacklevel=2,
            )
        return info


def _ids(run_ids: Sequence[int]) -> str:
    return ",".join(str(run_id) for run_id in run_ids)


def _body(model: type[RunCreate] | type[RunUpdate], body: Any, fields: dict[str, Any]) -> bytes:
    """Encode a model given whole or as keyword fields; only the fields set are sent."""
    if body is not None and fields:
        raise TypeError("pass either a body model or keyword fields, not both")
    return encode_body(body if body is not None else model(**fields))
