"""GET /runs/{id}/diagnosis, live findings, `finding=` and `diagnosis` events, through the
real server on SQLite and PostgreSQL."""

from __future__ import annotations

import math
from typing import Any

import httpx
import numpy as np
import pytest
from click.testing import CliRunner

from momentum.cli import main
from tests import diagnosis_curves as curves
from tests.support import live_server, wait_until
from tests.test_events import open_stream

FULL, READ = {"Authorization": "Bearer full-secret"}, {"Authorization": "Bearer read-secret"}


def _points(key: str, steps: np.ndarray, values: np.ndarray) -> list[dict[str, Any]]:
    return [
        {"key": key, "step": int(s), "value": v if math.isfinite(v) else "NaN"}
        for s, v in zip(steps.tolist(), values.tolist(), strict=True)
    ]


def _log_case(api: httpx.Client, case: curves.Case) -> int:
    run = api.post("/runs", json={"name": case.name, "params": curves.PARAMS}, headers=FULL)
    run_id = int(run.json()["id"])
    batch = _points("loss", curves.STEPS, case.loss)
    if case.val_loss is not None:
        batch += _points("val_loss", curves.VAL_STEPS, case.val_loss)
    assert api.post(f"/runs/{run_id}/metrics", json={"points": batch}, headers=FULL).is_success
    return run_id


def _listed(api: httpx.Client, **params: str) -> list[str]:
    page = api.get("/runs", params=params, headers=READ).json()
    return sorted(item["name"] for item in page["items"])


def _check_bad_input(api: httpx.Client, run_id: int) -> None:
    assert api.get(f"/runs/{run_id}/diagnosis").status_code == 401
    bad_kind = api.get("/runs", params={"finding": "wobble"}, headers=READ)
    assert bad_kind.status_code == 422
    assert bad_kind.json()["error"]["detail"][0]["loc"] == ["query", "finding"]
    bad_key = api.get(f"/runs/{run_id}/diagnosis", params={"key": "a\nb"}, headers=READ)
    assert bad_key.status_code == 422 and bad_key.json()["error"]["detail"][0]["loc"] == [
        "query",
        "key",
    ]
    assert api.get(f"/runs/{run_id}/diagnosis?key=nope", headers=READ).status_code == 404
    assert api.get("/runs/999999/diagnosis", headers=READ).status_code == 404


@pytest.mark.e2e
def test_findings_of_every_kind_live_filtered_and_announced(database_url: str) -> None:
    env = {
        "MOMENTUM_DATABASE_URL": database_url,
        "MOMENTUM_TOKEN": "full-secret",
        "MOMENTUM_READ_TOKEN": "read-secret",
        "MOMENTUM_DIAGNOSIS_INTERVAL_S": "0.2",
    }
    with (
        live_server(env) as url,
        httpx.Client(base_url=f"{url}/api/v1", timeout=30) as api,
        open_stream(url, token="read-secret") as stream,
    ):
        ids = {case.name: (_log_case(api, case), case.expected) for case in curves.cases()}
        for name, (run_id, expected) in ids.items():
            answer = api.get(f"/runs/{run_id}/diagnosis", headers=READ).json()
            assert answer["run_id"] == run_id and answer["key"] == "loss"
            assert [f["kind"] for f in answer["findings"]] == expected, name
        (ringing,) = api.get(f"/runs/{ids['ringing'][0]}/diagnosis", headers=READ).json()[
            "findings"
        ]
        assert ringing["detail"]["period"] == pytest.approx(curves.RINGING_PERIOD, rel=0.05)
        assert "μ=0.99" in ringing["advice"] and ringing["message"].startswith("loss oscillates")

        # Live: stored as points arrived, so the run list filters and shows them.
        wait_until(lambda: _listed(api, finding="overfitting") == ["overfitting"], timeout=30)
        for name, (_, expected) in ids.items():
            for kind in expected:
                assert _listed(api, finding=kind) == [name]
        items = api.get("/runs", params={"limit": 50}, headers=READ).json()["items"]
        assert {i["name"]: i["findings"] for i in items} == {n: e for n, (_, e) in ids.items()}

        ringing_id = ids["ringing"][0]
        stream.until(
            lambda seen: any(
                e.kind == "diagnosis" and e.data["run_id"] == ringing_id for e in seen
            ),
            timeout=30,
        )
        (event,) = [
            e for e in stream.seen if e.kind == "diagnosis" and e.data["run_id"] == ringing_id
        ]
        assert event.data["key"] == "loss" and event.data["kinds"] == ["oscillation"]
        assert event.data["findings"][0]["message"] == ringing["message"]
        _check_bad_input(api, ringing_id)
        _check_cli(url, ringing_id, ids["clean"][0])


def _check_cli(url: str, ringing_id: int, clean_id: int) -> None:
    """`momentum diagnose RUN_ID` prints the findings with their advice."""
    env = {"MOMENTUM_URL": url, "MOMENTUM_TOKEN": "read-secret"}
    shown = CliRunner().invoke(main, ["diagnose", str(ringing_id)], env=env)
    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.output.split())
    assert f"run {ringing_id}: loss" in text and "oscillation" in text
    assert "period of about" in text and "try μ=0.9" in text
    clean = CliRunner().invoke(main, ["diagnose", str(clean_id)], env=env)
    assert clean.exit_code == 0 and "no findings in loss" in clean.output
    missing = CliRunner().invoke(main, ["diagnose", str(ringing_id), "--key", "nope"], env=env)
    assert missing.exit_code == 1 and "nope" in missing.output
