"""The sweep view's search panel in a real headless Chromium, against the real service:
a random sweep with ASHA whose trials are played through the worker protocol while the
page is open (tests/sweep_play.py), so stops and rung cutoffs are the service's own
decisions, and the page must show them live."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page

from tests.browser import chromium, wait_for_function, watch
from tests.support import live_server
from tests.sweep_play import asha_sweep, play_sweep
from tests.test_dashboard import RECORD_CSP_VIOLATIONS

pytestmark = pytest.mark.e2e

MARKUP = '<b id="pwn">x</b>'


@pytest.fixture
def service(tmp_path: Path, sqlite_template: Path) -> Iterator[str]:
    database = tmp_path / "momentum.sqlite3"
    shutil.copyfile(sqlite_template, database)
    with live_server({"MOMENTUM_DATABASE_URL": f"sqlite:///{database}"}, timeout=90) as url:
        yield url


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Page]:
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 1400})
        opened = context.new_page()
        opened.set_default_timeout(15_000)
        opened.add_init_script(RECORD_CSP_VIOLATIONS)
        problems = watch(opened)
        try:
            yield opened
            problems.assert_none()  # no JavaScript errors in the console, no dialogs
            assert opened.evaluate("window.cspViolations") == []
        finally:
            opened.screenshot(path=str(tmp_path / "sweep-search.png"), full_page=True)
            context.close()


def chart(page: Page, element_id: str, role: str) -> list[dict[str, Any]]:
    return page.evaluate(
        """([id, role]) => document.getElementById(id).data
            .filter((t) => t.meta?.role === role)
            .map((t) => ({x: Array.from(t.x), y: Array.from(t.y), meta: t.meta,
                          color: t.line?.color ?? null, hovertext: [t.hovertext].flat()[0]}))""",
        [element_id, role],
    )


def test_the_search_panel_draws_trials_rungs_and_stops_live(service: str, page: Page) -> None:
    api = httpx.Client(base_url=f"{service}/api/v1", timeout=30)
    body = asha_sweep(f"search {MARKUP}")
    sweep = api.post("/sweeps", json=body).json()
    page.goto(f"{service}/?view=sweep&sweep={sweep['id']}&key=loss")
    page.wait_for_selector("#live-status.on")
    page.locator("#sweep-budget").filter(has_text="random: 4/4 trials").wait_for()

    # Trial 1 trains fastest, the later ones ever slower: ASHA stops some at a rung.
    played = play_sweep(api, sweep["id"], [1.0, 0.1, 0.05, 0.02])
    stopped = {trial.job_id for trial in played if trial.stopped}
    assert stopped, "ASHA stopped none of the losing trials"
    ended = api.get(f"/sweeps/{sweep['id']}").json()
    reasons = {job_id: api.get(f"/jobs/{job_id}").json()["early_stopped"] for job_id in stopped}

    # Live (no reload): every trial's curve, the stopped ones grey with their reason.
    wait_for_function(
        page,
        """(n) => document.getElementById('sweep-curves').data
            ?.filter((t) => t.meta?.role === 'trial-curve').length === n
            && document.getElementById('sweep-budget').textContent.includes('stopped early')
            && document.querySelectorAll('#sweep-stopped tbody tr').length > 0""",
        arg=len(played),
    )
    wait_for_function(
        page,
        "(n) => document.querySelectorAll('#sweep-stopped tbody tr').length === n",
        arg=len(stopped),
    )
    curves = {c["meta"]["job_id"]: c for c in chart(page, "sweep-curves", "trial-curve")}
    for trial in played:
        drawn = curves[trial.job_id]
        assert drawn["x"][-1] == trial.last_step  # a stopped run's curve ends at its rung
        assert drawn["meta"]["stopped"] is trial.stopped
        if trial.stopped:
            assert drawn["color"] == "rgb(156,163,175)"
            assert drawn["meta"]["reason"] == reasons[trial.job_id]["reason"]
            assert reasons[trial.job_id]["reason"].replace("<", "&#60;") in drawn["hovertext"]
    # The rung cutoffs, as the service decided them.
    (rungs,) = chart(page, "sweep-curves", "rung")
    decided = [r for r in ended["rungs"] if r["cutoff"] is not None]
    assert rungs["x"] == [r["step"] for r in decided]
    assert rungs["y"] == pytest.approx([r["cutoff"] for r in decided])

    # The objective of each trial by its number, and the best so far.
    (trials,) = chart(page, "sweep-trials", "trials")
    assert trials["x"] == [1, 2, 3, 4]
    assert trials["meta"]["stopped"] == [t.stopped for t in played]
    (best_line,) = chart(page, "sweep-trials", "best-so-far")
    assert best_line["y"][-1] == pytest.approx(ended["best"]["objective"])
    assert ended["best"]["job_id"] == played[0].job_id

    budget = page.locator("#sweep-budget").inner_text()
    assert f"{ended['steps_spent']:,} steps spent" in budget
    assert f"{len(stopped)} stopped early" in budget
    rows = page.locator("#sweep-stopped tbody td.reason").all_inner_texts()
    assert sorted(rows) == sorted(r["reason"] for r in reasons.values())
    # A stopped curve's hover shows its reason as text.
    first = next(t for t in played if t.stopped)
    page.evaluate(
        """(jobId) => { const chart = document.getElementById('sweep-curves');
            const index = chart.data.findIndex((t) => t.meta?.job_id === jobId);
            Plotly.Fx.hover(chart, [{curveNumber: index, pointNumber: 0}]); }""",
        first.job_id,
    )
    hover = page.locator("#sweep-curves .hoverlayer").text_content() or ""
    assert "stopped at step" in hover, hover
    assert page.locator("#pwn").count() == 0
    # The sweep's status in the picker follows it too.
    assert ended["status"] == "succeeded"
    wait_for_function(
        page,
        "document.getElementById('sweep-choice').selectedOptions[0].text.endsWith('(succeeded)')",
    )
    api.close()
