"""Comparison through the real server: `momentum serve`, the HTTP client, and the CLI."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result

from momentum.cli import main
from momentum.client import MomentumAPIError, MomentumClient
from tests.support import live_server

pytestmark = pytest.mark.e2e


def cli(url: str, *args: str) -> Result:
    env = {"MOMENTUM_URL": url, "MOMENTUM_TOKEN": "", "COLUMNS": "200"}
    return CliRunner().invoke(main, list(args), env=env)


def _runs(http: httpx.Client) -> list[int]:
    """Three runs: momentum 0 and 0.9 (twice, seeds 0 and 1), loss reaching 0.5 at steps
    60, 20 and 30; 5,000 steps each, so reads cross sealed blocks and recent rows."""
    ids = []
    for name, momentum, seed, rate in (
        ("sgd", 0.0, 0, 60),
        ("mu0.9", 0.9, 0, 20),
        ("mu0.9", 0.9, 1, 30),
    ):
        params: dict[str, Any] = {"momentum": momentum, "seed": seed}
        run = http.post("/api/v1/runs", json={"name": name, "params": params}).json()
        points = [
            {"key": "loss", "step": s, "value": max(0.01, 1 - s / (2 * rate)), "wall_time": 1e9 + s}
            for s in range(5000)
        ]
        assert (
            http.post(f"/api/v1/runs/{run['id']}/metrics", json={"points": points}).status_code
            == 200
        )
        ids.append(run["id"])
    return ids


def test_compare_summary_groups_and_export_through_the_real_server(
    database_url: str, tmp_path: Path
) -> None:
    with (
        live_server({"MOMENTUM_DATABASE_URL": database_url}) as url,
        httpx.Client(base_url=url, timeout=30) as http,
        MomentumClient(url) as client,
    ):
        sgd, fast, slow = _runs(http)
        curves = client.compare([sgd, fast], ["loss"], smoothing=0.6, max_points=100, x="wall_time")
        assert [(s.run_id, s.total, len(s.steps) <= 100) for s in curves.series] == [
            (sgd, 5000, True),
            (fast, 5000, True),
        ]
        assert curves.series[0].wall_times[0] == 0.0 and curves.series[0].smoothed is not None
        summary = client.compare_summary([sgd, fast, slow], "loss", threshold=0.5, baseline=sgd)
        assert [r.steps_to_threshold for r in summary.runs] == [60, 20, 30]
        assert [r.speedup for r in summary.runs] == [1.0, 3.0, 2.0]
        assert summary.ranking == [fast, slow, sgd]
        groups = client.compare_groups([sgd, fast, slow], "loss", by="momentum", threshold=0.5)
        assert [(g.value, g.runs) for g in groups.groups] == [(0.0, 1), (0.9, 2)]
        assert groups.best is not None and groups.best.value == 0.9
        assert groups.groups[1].steps_to_threshold.mean == 25.0
        with pytest.raises(MomentumAPIError) as missing:
            client.compare_summary([sgd, 999_999], "loss")
        assert (missing.value.status_code, missing.value.message) == (
            404,
            "run 999999 does not exist",
        )

        table = cli(
            url, "compare", f"{sgd},{fast}", str(slow), "--threshold", "0.5", "--baseline", str(sgd)
        )
        assert table.exit_code == 0, table.output
        lines = [line for line in table.output.splitlines() if "│" in line]
        ranked = [line.split("│")[2].strip() for line in lines]
        assert ranked == [str(fast), str(slow), str(sgd)]
        assert "3.00x" in table.output and "fewest steps" in table.output
        grouped = cli(
            url, "compare", f"{sgd},{fast},{slow}", "--by", "momentum", "--threshold", "0.5"
        )
        assert grouped.exit_code == 0, grouped.output
        assert "0.9 *" in grouped.output and "25 ± 7.1" in grouped.output
        bad = cli(url, "compare", f"{sgd},999999")
        assert bad.exit_code == 1 and "run 999999 does not exist" in bad.output

        target = tmp_path / "runs.csv"
        exported = cli(url, "export", str(sgd), str(fast), "--keys", "loss", "-o", str(target))
        assert exported.exit_code == 0, exported.output
        rows = list(csv.DictReader(io.StringIO(target.read_text())))
        assert len(rows) == 10_000
        assert rows[0] == {
            "run_id": str(sgd),
            "run_name": "sgd",
            "params.momentum": "0.0",
            "params.seed": "0",
            "key": "loss",
            "step": "0",
            "value": "1.0",
            "wall_time": "1000000000.0",
        }
        assert (rows[-1]["run_id"], rows[-1]["step"], rows[-1]["value"]) == (
            str(fast),
            "4999",
            "0.01",
        )
        to_stdout = cli(url, "export", str(slow))
        assert to_stdout.exit_code == 0
        assert len(to_stdout.output.splitlines()) == 5001
