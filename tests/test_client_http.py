"""MomentumClient against a mock transport: configuration, encoding, errors, version check."""

from __future__ import annotations

import math
import subprocess
import sys
import warnings

import httpx
import orjson
import pytest

from momentum.client import ContractMismatchWarning, MomentumAPIError, MomentumClient
from momentum.client.http import DEFAULT_URL, is_retryable
from momentum.contract import PointBatch
from tests.fake_service import FakeService

HEARTBEAT = {"id": 1, "status": "running", "last_heartbeat_at": "2024-01-01T00:00:00Z"}


def recording_client(
    url: str | None = None, token: str | None = None, answer: dict[str, object] = HEARTBEAT
) -> tuple[MomentumClient, list[httpx.Request]]:
    """A client whose every request is kept and answered with `answer`."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=answer)

    return MomentumClient(url, token, transport=httpx.MockTransport(handler)), seen


def test_url_and_token_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOMENTUM_URL", "http://metrics.example:9000/")
    monkeypatch.setenv("MOMENTUM_TOKEN", "s3cret")
    client, seen = recording_client()
    client.heartbeat(7)
    assert str(seen[0].url) == "http://metrics.example:9000/api/v1/runs/7/heartbeat"
    assert seen[0].headers["Authorization"] == "Bearer s3cret"


def test_arguments_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOMENTUM_URL", "http://ignored:1")
    monkeypatch.setenv("MOMENTUM_TOKEN", "ignored")
    client, seen = recording_client(url="http://given:2", token="mine")
    client.heartbeat(1)
    assert seen[0].url.host == "given" and seen[0].headers["Authorization"] == "Bearer mine"


def test_without_configuration_it_talks_to_localhost_unauthenticated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MOMENTUM_URL", raising=False)
    monkeypatch.delenv("MOMENTUM_TOKEN", raising=False)
    client, seen = recording_client()
    client.heartbeat(1)
    assert str(seen[0].url).startswith(DEFAULT_URL) and "Authorization" not in seen[0].headers


def test_every_request_has_explicit_timeouts() -> None:
    client, seen = recording_client()
    client.heartbeat(1)
    client.heartbeat(1, timeout=2.5)
    default, short = (request.extensions["timeout"] for request in seen)
    assert default == {"connect": 5.0, "read": 30.0, "write": 30.0, "pool": 5.0}
    assert short == {"connect": 2.5, "read": 2.5, "write": 2.5, "pool": 2.5}


def test_log_points_sends_non_finite_values_as_the_contract_strings() -> None:
    client, seen = recording_client(answer={"run_id": 1, "accepted": 4, "keys": ["loss"]})
    points = [
        {"key": "loss", "step": 0, "value": 0.5},
        {"key": "loss", "step": 1, "value": math.nan},
        {"key": "loss", "step": 2, "value": math.inf},
        {"key": "loss", "step": 3, "value": -math.inf, "wall_time": 1.5},
    ]
    assert client.log_points(1, points).accepted == 4
    body = orjson.loads(seen[0].content)
    assert [p["value"] for p in body["points"]] == [0.5, "NaN", "Infinity", "-Infinity"]
    assert len(PointBatch.model_validate_json(seen[0].content).points) == 4


def test_error_answers_raise_with_the_service_code_and_message() -> None:
    service = FakeService(fail_with=[422, 503])
    client = MomentumClient(transport=service.transport())
    with pytest.raises(MomentumAPIError) as rejected:
        client.create_run(name="x")
    assert (rejected.value.status_code, rejected.value.code) == (422, "fake_failure")
    assert not rejected.value.retryable and not is_retryable(rejected.value)
    with pytest.raises(MomentumAPIError) as unavailable:
        client.create_run(name="x")
    assert unavailable.value.retryable
    assert is_retryable(httpx.ConnectError("refused"))


def test_a_non_json_error_still_raises_a_readable_error() -> None:
    client = MomentumClient(
        transport=httpx.MockTransport(lambda _: httpx.Response(502, text="Bad Gateway"))
    )
    with pytest.raises(MomentumAPIError, match="502 http_error: Bad Gateway"):
        client.get_run(1)


def test_runs_points_and_history_round_trip() -> None:
    service = FakeService()
    client = MomentumClient(transport=service.transport())
    run = client.create_run(name="r", params={"momentum": 0.9}, external_id="abc")
    assert client.create_run(name="r", external_id="abc").id == run.id
    result = client.log_points(
        run.id, [{"key": "loss", "step": s, "value": s / 2} for s in range(3)]
    )
    assert result.accepted == 3
    history = client.get_history(run.id, "loss")
    assert (history.steps, history.values) == ([0, 1, 2], [0.0, 0.5, 1.0])
    assert client.update_run(run.id, status="succeeded").status == "succeeded"


def test_version_warns_only_when_the_contract_differs() -> None:
    same = MomentumClient(transport=FakeService().transport())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        same.version()
    other = MomentumClient(transport=FakeService(contract="999").transport())
    with pytest.warns(ContractMismatchWarning, match="contract '999'"):
        assert other.version().contract == "999"


def test_a_given_http_client_is_used_and_left_open() -> None:
    service = FakeService()
    http = httpx.Client(transport=service.transport())
    with MomentumClient(http=http) as client:
        client.create_run(name="shared")
    assert not http.is_closed and service.log == ["POST /api/v1/runs -> 201"]


def test_import_momentum_is_light_and_run_loads_on_first_use() -> None:
    code = (
        "import sys, momentum\n"
        "light = 'httpx' not in sys.modules and 'momentum.client' not in sys.modules\n"
        "run_class = momentum.Run\n"
        "heavy = [m for m in ('fastapi', 'sqlalchemy', 'torch', 'service', 'trainer')"
        " if m in sys.modules]\n"
        "print(light, run_class.__module__, heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "momentum.client.run", "[]"]
