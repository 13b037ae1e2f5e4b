"""`momentum sweep --strategy ...` and `momentum sweeps [show ID]` against a real server."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.entry_point_support import register
from tests.support import live_server
from tests.sweep_play import asha_sweep, play_sweep
from tests.test_cli_jobs import cli, get

pytestmark = pytest.mark.e2e

API = "/api/v1"


@pytest.fixture(scope="module")
def url(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    database = tmp_path_factory.mktemp("cli-sweeps") / "momentum.sqlite3"
    shutil.copyfile(sqlite_template, database)
    with live_server({"MOMENTUM_DATABASE_URL": f"sqlite:///{database}"}, timeout=90) as base_url:
        yield base_url


def table_rows(output: str) -> list[list[str]]:
    """The cells of each line of the rich tables in `output`."""
    return [[cell.strip() for cell in line.strip("│").split("│")] for line in output.splitlines()
            if line.startswith("│")]  # fmt: skip


def test_the_issues_tpe_sweep_is_created_as_asked_and_shown(url: str) -> None:
    result = cli(
        url, "sweep", "--strategy", "tpe", "--space", "momentum=0:0.99",
        "--space", "lr=1e-3:1:log", "--max-jobs", "30", "--early-stop", "asha",
        "--objective", "val_loss", "--parallelism", "2", "--min-step", "50",
        "--name", "cli-tpe", "--dataset", "digits", "--steps", "300",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    sweep_id = int(result.output.split()[1].rstrip(":"))
    assert "tpe search, budget 30 jobs" in result.output
    sweep = get(url, f"/sweeps/{sweep_id}")
    assert sweep["strategy"] == "tpe"
    assert sweep["space"]["momentum"] == {
        "type": "float", "low": 0.0, "high": 0.99, "log": False, "choices": None,
    }  # fmt: skip
    assert sweep["space"]["lr"]["log"] is True
    assert (sweep["max_jobs"], sweep["parallelism"]) == (30, 2)
    assert sweep["objective"] == {"key": "val_loss", "mode": "min", "summary": "tail_mean"}
    assert sweep["early_stop"]["rule"] == "asha"
    assert (sweep["early_stop"]["key"], sweep["early_stop"]["min_step"]) == ("val_loss", 50)
    assert sweep["base"] == {"dataset": "digits", "steps": 300}

    shown = cli(url, "sweeps", "show", str(sweep_id))
    assert shown.exit_code == 0, shown.output
    assert f"sweep {sweep_id} 'cli-tpe': tpe" in shown.output
    assert "objective:  val_loss (min, tail_mean)" in shown.output
    assert "space:      momentum float [0, 0.99]; lr float [0.001, 1] log" in shown.output
    assert "asha on val_loss (min): rungs at 50 x 3^k" in shown.output
    assert f"/30 trials, {sweep['steps_spent']:,} steps spent; 2 at once" in shown.output
    listed = cli(url, "sweeps")
    assert listed.exit_code == 0, listed.output
    assert "cli-tpe" in listed.output and "tpe" in listed.output


def test_a_space_the_service_refuses_is_its_422_naming_the_field(url: str) -> None:
    before = get(url, "/sweeps?limit=1")["total"]
    result = cli(
        url, "sweep", "--strategy", "random", "--space", "momentum=0:1.5",
        "--max-jobs", "4", "--dataset", "ravine", "--model", "linear",
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "space.momentum" in result.output
    assert get(url, "/sweeps?limit=1")["total"] == before


def test_sweeps_show_prints_the_rungs_and_the_stopped_runs_with_their_reasons(url: str) -> None:
    with httpx.Client(base_url=f"{url}{API}", timeout=30) as api:
        sweep = api.post("/sweeps", json=asha_sweep("cli-played")).json()
        played = play_sweep(api, sweep["id"], [1.0, 0.1, 0.05, 0.02])
        ended = api.get(f"/sweeps/{sweep['id']}").json()
        stopped = [api.get(f"/jobs/{t.job_id}").json() for t in played if t.stopped]
    assert stopped, "ASHA stopped none of the losing trials"
    shown = cli(url, "sweeps", "show", str(sweep["id"]))
    assert shown.exit_code == 0, shown.output
    assert f"4/4 trials, {ended['steps_spent']:,} steps spent" in shown.output
    best = ended["best"]
    assert f"best:       loss {best['objective']:.4g} (job {best['job_id']}" in shown.output
    rows = table_rows(shown.output)
    for rung in ended["rungs"]:
        row = [
            str(rung["step"]),
            f"{rung['cutoff']:.4g}",
            str(rung["reached"]),
            str(rung["stopped"]),
        ]
        assert row in rows, (row, rows)
    assert f"stopped early ({len(stopped)} of 4 jobs)" in shown.output
    flat = " ".join(shown.output.split())
    for job in stopped:
        assert job["early_stopped"]["reason"] in flat


def test_an_entry_point_search_samples_its_params_within_the_space(url: str) -> None:
    with httpx.Client(base_url=url, timeout=30) as client:
        assert register(client).status_code in (200, 201)
    result = cli(
        url, "sweep", "--entry-point", "train", "--strategy", "random",
        "--space", "lr=1e-4:1e-1:log", "--space", "arch=choice:mlp,cnn",
        "--space", "seed=0:9:int", "--max-jobs", "3", "--parallelism", "3",
        "--param", "steps=50", "--objective", "val_accuracy", "--name", "cli-entry",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    sweep = get(url, f"/sweeps/{int(result.output.split()[1].rstrip(':'))}")
    assert (sweep["entry_point"], sweep["strategy"], sweep["trials"]) == ("train", "random", 3)
    assert sweep["objective"]["mode"] == "max"  # an accuracy is maximised unless told
    for job_id in sweep["job_ids"]:
        params = get(url, f"/jobs/{job_id}")["params"]
        assert 1e-4 <= params["lr"] <= 1e-1 and params["arch"] in ("mlp", "cnn")
        assert isinstance(params["seed"], int) and 0 <= params["seed"] <= 9
        assert params["steps"] == 50
