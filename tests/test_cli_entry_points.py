"""`momentum submit/sweep --entry-point`, `momentum entry-points`: what they send and show,
against a recording MockTransport (the real routes are tested with the service)."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
from click.testing import CliRunner, Result

import momentum.client
from momentum.cli import main
from momentum.cli_entry_points import describe_spec, parse_param_grid, parse_params, parse_value
from momentum.contract import EntryPointDefinition, ParamSpec
from tests.fake_queue import NOW, job_public

DEFINITION = EntryPointDefinition.model_validate(
    {
        "command": ["python", "train.py"],
        "total_param": "steps",
        "params": {
            "momentum": {"type": "float", "default": 0.9, "min": 0.0, "max": 1.0},
            "steps": {"type": "int", "default": 1000, "min": 1},
            "arch": {"type": "str", "default": "mlp", "choices": ["mlp", "cnn"]},
            "lr": {"type": "float", "min": 0.0, "log": True},
        },
    }
)


class Recorder:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, Any]] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        body = orjson.loads(request.content) if request.content else None
        self.requests.append((request.method, request.url.path, body))
        if request.url.path.endswith("/sweeps"):
            answer = {"id": 1, "name": "s", "entry_point": "train", "job_ids": [1, 2]}
            answer |= {"base": {}, "grid": {}, "status": "queued", "counts": {}}
            answer |= {"created_at": NOW, "updated_at": NOW}
            answer |= {"max_jobs": 2, "parallelism": None, "best": None, "trials": 2}
            answer |= {"steps_spent": 0}
            return httpx.Response(201, json=answer)
        if request.url.path.endswith("/entry-points"):
            listed = {**DEFINITION.model_dump(mode="json"), "name": "train"}
            listed |= {"digest": DEFINITION.compute_digest(), "workers": ["w1", "w2"]}
            listed |= {"registered_at": NOW, "updated_at": NOW}
            return httpx.Response(200, json={"items": [listed], "total": 1})
        if request.url.path.endswith("/jobs") and request.method == "GET":
            page = {
                "items": [job_public(progress_step=5, progress_total=40).model_dump(mode="json")]
            }
            return httpx.Response(200, json=page | {"total": 1, "limit": 50, "offset": 0})
        return httpx.Response(201, json=job_public(status="queued").model_dump(mode="json"))


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recording = Recorder()
    real = momentum.client.MomentumClient

    def client(url: str | None = None, token: str | None = None, **_: Any) -> Any:
        return real(url, token, transport=httpx.MockTransport(recording.handle))

    monkeypatch.setattr(momentum.client, "MomentumClient", client)
    return recording


def cli(*args: str) -> Result:
    env = {"MOMENTUM_URL": "http://svc", "MOMENTUM_TOKEN": "", "COLUMNS": "200"}
    return CliRunner().invoke(main, list(args), env=env)


def test_values_parse_as_json_when_they_do() -> None:
    assert [parse_value(v) for v in ("0.9", "3", "true", "mlp", '"7"', "[1]", "null")] == [
        0.9,
        3,
        True,
        "mlp",
        "7",
        "[1]",
        "null",
    ]
    assert parse_params(("momentum=0.9", "arch=cnn")) == {"momentum": 0.9, "arch": "cnn"}
    assert parse_param_grid(("momentum=0,0.5,0.9", "seed=0,1")) == {
        "momentum": [0, 0.5, 0.9],
        "seed": [0, 1],
    }


def test_submit_sends_the_entry_point_and_its_params(recorder: Recorder) -> None:
    result = cli(
        "submit", "--entry-point", "train", "--param", "momentum=0.9", "--param", "lr=0.01"
    )
    assert result.exit_code == 0, result.output
    [(method, path, body)] = recorder.requests
    assert (method, path) == ("POST", "/api/v1/jobs")
    assert body == {
        "entry_point": "train",
        "params": {"momentum": 0.9, "lr": 0.01},
        "project": "default",
        "tags": {},
    }
    assert result.output.startswith("job 7 queued")


def test_sweep_sends_the_entry_point_its_base_and_grid(recorder: Recorder) -> None:
    args = ["sweep", "--entry-point", "train", "--grid", "momentum=0,0.5,0.9", "--grid", "seed=0,1"]
    result = cli(*args, "--param", "steps=100")
    assert result.exit_code == 0, result.output
    [(_, path, body)] = recorder.requests
    assert path == "/api/v1/sweeps"
    assert (body["entry_point"], body["base"]) == ("train", {"steps": 100})
    assert body["grid"] == {"momentum": [0, 0.5, 0.9], "seed": [0, 1]}


def test_training_options_and_params_do_not_mix(recorder: Recorder) -> None:
    mixed = cli("submit", "--entry-point", "train", "--lr", "0.1")
    assert mixed.exit_code == 2 and "--lr: training options are the built-in" in mixed.output
    lonely = cli("submit", "--param", "lr=0.1")
    assert lonely.exit_code == 2 and "--param goes with --entry-point" in lonely.output
    assert recorder.requests == []


def test_entry_points_lists_params_digest_and_workers(recorder: Recorder) -> None:
    result = cli("entry-points")
    assert result.exit_code == 0, result.output
    assert DEFINITION.compute_digest()[:12] in result.output
    assert "momentum: float [0, 1] = 0.9" in result.output
    assert 'arch: str in [mlp, cnn] = "mlp"' in result.output
    assert "lr: float [0, inf] log required" in result.output
    assert "w1, w2" in result.output and "python train.py" in result.output


def test_jobs_lists_an_entry_point_job_with_its_params(recorder: Recorder) -> None:
    result = cli("jobs")
    assert result.exit_code == 0, result.output
    assert "train momentum=0.9 steps=40" in result.output and "5/40" in result.output


def test_a_spec_is_described_by_type_range_and_default() -> None:
    assert describe_spec(ParamSpec(type="int", default=0)) == "int = 0"
    assert describe_spec(ParamSpec(type="bool")) == "bool required"
