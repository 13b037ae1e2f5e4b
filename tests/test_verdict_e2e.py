"""Verdicts through the real server (`momentum serve`) on both backends: both routes
through the typed client, a refusal over plain HTTP, and `momentum verdict`."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
import scipy.stats
from click.testing import CliRunner, Result

from momentum.cli import main
from momentum.client import MomentumClient
from tests.jobs_support import TINY
from tests.support import live_server

pytestmark = pytest.mark.e2e
FINALS = {0.0: [0.50, 0.54, 0.47], 0.9: [0.20, 0.23, 0.18]}  # final loss by momentum, seed


def cli(url: str, *args: str) -> Result:
    env = {"MOMENTUM_URL": url, "MOMENTUM_TOKEN": "", "COLUMNS": "200"}
    return CliRunner().invoke(main, list(args), env=env)


def _sweep(http: httpx.Client) -> tuple[int, list[int]]:
    """A momentum x seed sweep whose runs' loss falls to FINALS (the jobs stay queued)."""
    grid = {"momentum": [*FINALS], "seed": [0, 1, 2]}
    sweep = http.post("/api/v1/sweeps", json={"name": "mu", "base": TINY, "grid": grid}).json()
    jobs = http.get("/api/v1/jobs", params={"sweep_id": sweep["id"]}).json()["items"]
    for job in jobs:
        final = FINALS[job["config"]["momentum"]][job["config"]["seed"]]
        points = [
            {"key": "loss", "step": s, "value": 1.0 - (1.0 - final) * s / 9} for s in range(10)
        ]
        assert http.post(
            f"/api/v1/runs/{job['run_id']}/metrics", json={"points": points}
        ).is_success
    return sweep["id"], sorted(job["run_id"] for job in jobs)


def test_verdict_routes_client_and_cli_through_the_real_server(database_url: str) -> None:
    with (
        live_server({"MOMENTUM_DATABASE_URL": database_url}, timeout=120) as url,
        httpx.Client(base_url=url, timeout=30) as http,
        MomentumClient(url) as client,
    ):
        sweep_id, run_ids = _sweep(http)
        result = client.sweep_verdict(sweep_id, summary="final")
        assert (result.sweep_id, result.by, result.summary) == (sweep_id, "momentum", "final")
        assert [(g.value, g.n) for g in result.groups] == [(0.0, 3), (0.9, 3)]
        assert result.best is not None and result.best.value == 0.9
        (versus,) = result.comparisons
        p_value = scipy.stats.ttest_ind(FINALS[0.0], FINALS[0.9], equal_var=False).pvalue
        assert versus.p_value == pytest.approx(p_value, rel=1e-6) and versus.significant
        assert result.groups[1].std == pytest.approx(np.std(FINALS[0.9], ddof=1))
        shown = "p<0.001" if p_value < 0.001 else f"p={p_value:.2g}"
        assert result.verdict == (
            f"momentum=0.9 has the lowest mean final loss (0.203 ± 0.025, 3 runs); "
            f"it beats 0.0 ({shown})."
        )
        same = client.compare_verdict(run_ids, summary="final", by="momentum")
        assert same.model_copy(update={"sweep_id": sweep_id}) == result
        refused = http.get(
            "/api/v1/compare/verdict",
            params={"run_ids": run_ids[0], "summary": "steps_to_threshold"},
        )
        assert refused.status_code == 422
        assert refused.json()["error"]["detail"][0]["loc"] == ["query", "threshold"]

        table = cli(url, "verdict", "--sweep", str(sweep_id), "--summary", "final")
        assert table.exit_code == 0, table.output
        assert result.verdict in table.output
        rows = [line.split("│")[1].strip() for line in table.output.splitlines() if "│" in line]
        assert rows[-2:] == ["0.0", "0.9 *"]
        ids = ",".join(map(str, run_ids))
        grouped = cli(url, "verdict", ids, "--by", "momentum", "--summary", "final")
        assert grouped.exit_code == 0, grouped.output
        assert result.verdict in grouped.output and "0.9 *" in grouped.output
        bad = cli(url, "verdict", ids, "--summary", "steps_to_threshold")
        assert bad.exit_code != 0 and "threshold" in bad.output
