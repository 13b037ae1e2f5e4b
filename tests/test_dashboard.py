"""The dashboard in a real headless Chromium against the real service, with real data.

One service (SQLite) and one browser serve the whole module; each test makes its own
runs and opens its own browser context (fresh sessionStorage). Every test saves a
screenshot under the pytest base temp directory (dashboard-screenshots/).
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page

from momentum.contract.entry_points import EntryPointDefinition, ParamSpec
from tests.browser import PageProblems, chromium, wait_for_function, watch
from tests.support import live_server, wait_until

pytestmark = pytest.mark.e2e

API = "/api/v1"
LIVE_TIMEOUT_MS = 2000  # the "within 2 s of new points"
XSS_NAME = "<img src=x onerror=alert(1)>"
MARKUP = '<a href="https://evil.example" id="pwn">x</a>'
# Every document the tests open records what its Content-Security-Policy refused.
RECORD_CSP_VIOLATIONS = """
    window.cspViolations = [];
    document.addEventListener("securitypolicyviolation", (event) => {
        window.cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
    });
"""
# Links anywhere in the page (HTML or Plotly's SVG) that lead to the markup's address.
EVIL_LINKS = """() => [...document.querySelectorAll("a")].filter((a) =>
    [a.getAttribute("href"), a.getAttributeNS("http://www.w3.org/1999/xlink", "href")]
        .some((href) => href?.includes("evil.example"))).length"""


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("dashboard")
    database = folder / "momentum.sqlite3"
    shutil.copyfile(sqlite_template, database)
    env = {"MOMENTUM_DATABASE_URL": f"sqlite:///{database}", "MOMENTUM_DATA_DIR": str(folder)}
    with live_server(env, timeout=120) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dashboard-screenshots", numbered=False)


class Opened:
    def __init__(self, page: Page, problems: PageProblems) -> None:
        self.page = page
        self.problems = problems

    def expect_refusal(self, status: int) -> None:
        """The browser logs each answer with an error status; a test expecting one says so."""
        self.problems.expected.append(f"status of {status}")


@pytest.fixture
def opened(browser: Browser, screenshots: Path, request: pytest.FixtureRequest) -> Iterator[Opened]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.add_init_script(RECORD_CSP_VIOLATIONS)
    problems = watch(page)
    try:
        yield Opened(page, problems)
        problems.assert_none()  # no JavaScript errors in the console, no dialogs
        assert page.evaluate("window.cspViolations") == []
    finally:
        page.screenshot(path=str(screenshots / f"{request.node.name}.png"), full_page=True)
        context.close()


def make_run(url: str, name: str, momentum: float = 0.9, seed: int = 0, **extra: Any) -> int:
    params = {"optimizer": "momentum", "momentum": momentum, "lr": 0.05, "seed": seed}
    body = {"name": name, "project": "dash", "params": params, **extra}
    response = httpx.post(f"{url}{API}/runs", json=body)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def log_curve(url: str, run_id: int, steps: range, rate: float = 1.0) -> None:
    batch = []
    for step in steps:
        batch.append({"key": "loss", "step": step, "value": 2.0 / (1 + rate * step)})
        batch.append({"key": "accuracy", "step": step, "value": 1 - 1 / (2 + rate * step)})
    response = httpx.post(f"{url}{API}/runs/{run_id}/metrics", json={"points": batch})
    assert response.status_code == 200, response.text


def main_traces(page: Page, key: str) -> list[dict[str, Any]]:
    """The traces a chart draws for its runs (the chart's own data, not the DOM)."""
    return page.evaluate(
        """key => document.getElementById(`chart-${key}`).data
            .filter(t => t.meta.role === "main")
            .map(t => ({run_id: t.meta.run_id, x: Array.from(t.x), y: Array.from(t.y)}))""",
        key,
    )


def wait_for_traces(page: Page, key: str, count: int) -> None:
    wait_for_function(
        page,
        """([key, count]) => {
            const chart = document.getElementById(`chart-${key}`);
            return chart?.data?.filter(t => t.meta.role === "main").length === count;
        }""",
        arg=[key, count],
    )


def test_runs_table_lists_the_seeded_runs(service: str, opened: Opened) -> None:
    names = ["table-a", "table-b"]
    for name in names:
        log_curve(service, make_run(service, name), range(0, 50))
    page = opened.page
    page.goto(f"{service}/?view=runs")
    page.fill("#run-filters input[name=q]", "table-")
    wait_for_function(page, "document.querySelectorAll('#runs-table tbody tr').length === 2")
    shown = page.locator("#runs-table tbody .run-name").all_inner_texts()
    assert sorted(shown) == names
    steps = page.locator("#runs-table tbody tr").first.locator("td").nth(10).inner_text()
    assert steps == "49"
    page.wait_for_selector("#live-status.on")


def test_selecting_two_runs_draws_two_traces_per_chart(service: str, opened: Opened) -> None:
    slow = make_run(service, "pick-slow", momentum=0.0)
    fast = make_run(service, "pick-fast", momentum=0.9)
    log_curve(service, slow, range(0, 300), rate=0.1)
    log_curve(service, fast, range(0, 300), rate=1.0)
    page = opened.page
    page.goto(f"{service}/?view=runs")
    page.fill("#run-filters input[name=q]", "pick-")
    for run_id in (slow, fast):
        page.check(f"#runs-table tr[data-run-id='{run_id}'] input[type=checkbox]")
    page.click("#compare-selected")
    for key in ("loss", "accuracy"):
        wait_for_traces(page, key, 2)
        traces = main_traces(page, key)
        assert sorted(t["run_id"] for t in traces) == sorted([slow, fast])
        assert all(len(t["x"]) == 300 for t in traces)
    fast_loss = next(t for t in main_traces(page, "loss") if t["run_id"] == fast)
    assert fast_loss["y"][10] == pytest.approx(2.0 / 11)
    assert f"runs={slow}%2C{fast}" in page.url or f"runs={slow},{fast}" in page.url
    ranked = page.locator("#summary-table tbody tr").first.get_attribute("data-run-id")
    assert ranked == str(fast)  # lower final loss ranks first


def test_a_shared_compare_link_draws_its_keys_then_offers_the_others(
    service: str, opened: Opened
) -> None:
    """A link naming runs and keys draws those charts first (with the basic Plotly.js
    bundle), then lists every key the runs have and fills the summary."""
    first, second = make_run(service, "link-a"), make_run(service, "link-b", momentum=0.5)
    for run_id in (first, second):
        log_curve(service, run_id, range(0, 120))
        body = {"points": [{"key": "lr", "step": s, "value": 0.1} for s in range(0, 120)]}
        assert httpx.post(f"{service}{API}/runs/{run_id}/metrics", json=body).status_code == 200
    page = opened.page
    page.goto(f"{service}/?view=compare&runs={first},{second}&keys=loss")
    wait_for_traces(page, "loss", 2)
    assert page.locator("#chart-accuracy").count() == 0
    wait_for_function(page, "document.querySelectorAll('#key-choices input').length === 3")
    offered = page.locator("#key-choices input").evaluate_all(
        "boxes => boxes.map(b => [b.value, b.checked])"
    )
    assert offered == [["accuracy", False], ["loss", True], ["lr", False]]
    wait_for_function(page, "document.querySelectorAll('#summary-table tbody tr').length === 2")
    traces = page.evaluate("Object.keys(Plotly.PlotSchema.get().traces).sort()")
    assert traces == ["bar", "pie", "scatter"], (
        "not the basic bundle: npm ci --prefix service/vendor"
    )


def test_smoothing_slider_changes_the_plotted_values(service: str, opened: Opened) -> None:
    run_id = make_run(service, "smooth-me")
    noisy = [
        {"key": "loss", "step": step, "value": 1.0 + (0.5 if step % 2 else -0.5)}
        for step in range(200)
    ]
    httpx.post(f"{service}{API}/runs/{run_id}/metrics", json={"points": noisy})
    page = opened.page
    page.goto(f"{service}/?view=compare&runs={run_id}&keys=loss")
    wait_for_traces(page, "loss", 1)
    (raw,) = main_traces(page, "loss")
    assert raw["y"][:4] == [0.5, 1.5, 0.5, 1.5]
    page.locator("#smoothing").fill("0.9")
    wait_for_function(
        page, "document.getElementById('chart-loss').data.some(t => t.meta.role === 'raw')"
    )
    (smoothed,) = main_traces(page, "loss")
    assert smoothed["y"] != raw["y"]
    assert max(smoothed["y"][50:]) - min(smoothed["y"][50:]) < 0.2  # the zig-zag is damped
    assert "smooth=0.9" in page.url


def test_points_arriving_update_the_chart_and_table_live(service: str, opened: Opened) -> None:
    run_id = make_run(service, "live-run")
    log_curve(service, run_id, range(0, 100))
    page = opened.page
    page.goto(f"{service}/?view=compare&runs={run_id}")
    wait_for_traces(page, "loss", 1)
    page.wait_for_selector("#live-status.on")
    log_curve(service, run_id, range(100, 250))
    wait_for_function(
        page,
        """() => {
            const trace = document.getElementById('chart-loss').data
                .find(t => t.meta.role === 'main');
            return trace.x[trace.x.length - 1] === 249;
        }""",
        timeout=LIVE_TIMEOUT_MS,
    )
    page.click("nav a[data-view=runs]")
    page.fill("#run-filters input[name=q]", "live-run")
    row = f"#runs-table tr[data-run-id='{run_id}'] td:nth-child(11)"
    wait_for_function(page, f"document.querySelector(\"{row}\")?.textContent === '249'")
    log_curve(service, run_id, range(250, 300))
    wait_for_function(
        page, f"document.querySelector(\"{row}\")?.textContent === '299'", timeout=LIVE_TIMEOUT_MS
    )


def test_job_list_updates_live_and_cancels(service: str, opened: Opened) -> None:
    page = opened.page
    page.goto(f"{service}/?view=jobs")
    page.wait_for_selector("#live-status.on")
    body = {"config": {"dataset": "ravine", "model": "linear", "steps": 5}, "name": "live-job"}
    job = httpx.post(f"{service}{API}/jobs", json=body).json()
    row = page.locator(f"#jobs-table tr[data-job-id='{job['id']}']")
    row.wait_for(timeout=LIVE_TIMEOUT_MS)
    assert "queued" in row.inner_text()
    row.get_by_role("button", name="Cancel").click()
    wait_for_function(
        page,
        f"""document.querySelector("#jobs-table tr[data-job-id='{job["id"]}']")
            ?.textContent.includes('cancelled')""",
    )
    assert httpx.get(f"{service}{API}/jobs/{job['id']}").json()["status"] == "cancelled"
    row.get_by_role("button", name="Retry").click()
    wait_for_function(
        page,
        f"""document.querySelector("#jobs-table tr[data-job-id='{job["id"]}']")
            ?.textContent.includes('queued')""",
    )
    httpx.post(f"{service}{API}/jobs/{job['id']}/cancel")


def test_submitting_a_sweep_from_the_form_creates_its_jobs(service: str, opened: Opened) -> None:
    page = opened.page
    page.goto(f"{service}/?view=jobs")
    form = page.locator("#job-form")
    form.locator("select[name=dataset]").select_option("ravine")
    form.locator("select[name=model]").select_option("cnn")
    form.locator("input[name=momentum]").fill("0.5, 0.9")
    form.locator("input[name=seed]").fill("0, 1")
    form.locator("input[name=steps]").fill("5")
    form.locator("input[name=name]").fill("form-sweep")
    opened.expect_refusal(422)
    form.locator("button[type=submit]").click()
    # The API refuses a cnn on ravine: its message shows beside the model field.
    model_error = form.locator(".field-error[data-for=model]")
    model_error.wait_for()
    wait_for_function(
        page, "document.querySelector('.field-error[data-for=model]').textContent.length > 0"
    )
    assert "cnn" in model_error.inner_text()
    # The model "for the dataset" is left to the API: linear on ravine.
    form.locator("select[name=model]").select_option("")
    form.locator("button[type=submit]").click()
    wait_for_function(
        page, "document.getElementById('job-form-result').textContent.includes('queued 4 jobs')"
    )
    sweeps = httpx.get(f"{service}{API}/sweeps").json()["items"]
    sweep = next(s for s in sweeps if s["name"] == "form-sweep")
    assert len(sweep["job_ids"]) == 4
    grids = [httpx.get(f"{service}{API}/jobs/{j}").json()["config"] for j in sweep["job_ids"]]
    assert {c["model"] for c in grids} == {"linear"}
    assert sorted((c["momentum"], c["seed"]) for c in grids) == [
        (0.5, 0),
        (0.5, 1),
        (0.9, 0),
        (0.9, 1),
    ]
    for job_id in sweep["job_ids"]:
        page.locator(f"#jobs-table tr[data-job-id='{job_id}']").wait_for()
    httpx.post(f"{service}{API}/sweeps/{sweep['id']}/cancel")


def test_sweep_view_leads_with_the_verdict_and_draws_intervals_and_bands(
    service: str, opened: Opened
) -> None:
    body = {
        "name": "view-sweep",
        "base": {"dataset": "ravine", "model": "linear", "steps": 100},
        "grid": {"momentum": [0.0, 0.9], "seed": [0, 1]},
    }
    sweep = httpx.post(f"{service}{API}/sweeps", json=body).json()
    for job_id in sweep["job_ids"]:
        job = httpx.get(f"{service}{API}/jobs/{job_id}").json()
        rate = 1.0 if job["config"]["momentum"] == 0.9 else 0.05
        log_curve(service, job["run_id"], range(0, 100), rate=rate + job["config"]["seed"] / 100)
    page = opened.page
    page.goto(f"{service}/?view=sweep&sweep={sweep['id']}&key=loss")
    wait_for_function(page, "document.getElementById('sweep-final').data?.[0]?.x.length === 2")
    verdict = httpx.get(f"{service}{API}/sweeps/{sweep['id']}/verdict", params={"key": "loss"})
    expected = verdict.json()
    wait_for_function(page, "document.getElementById('sweep-verdict').textContent.length > 0")
    assert page.locator("#sweep-verdict").inner_text() == expected["verdict"]
    final = page.evaluate(
        """() => { const t = document.getElementById('sweep-final').data[0];
                   return {x: Array.from(t.x), y: Array.from(t.y), up: Array.from(t.error_y.array),
                           down: Array.from(t.error_y.arrayminus),
                           symbols: Array.from(t.marker.symbol)}; }"""
    )
    assert final["x"] == [0.0, 0.9]
    groups = expected["groups"]
    assert final["y"] == pytest.approx([g["mean"] for g in groups])
    # The bars are the verdict's confidence interval, not ± std.
    assert final["up"] == pytest.approx([g["ci_high"] - g["mean"] for g in groups])
    assert final["down"] == pytest.approx([g["mean"] - g["ci_low"] for g in groups])
    assert final["symbols"][1] == "star"  # μ = 0.9 trains faster: the best
    means = page.evaluate(
        "document.getElementById('sweep-bands').data.filter(t => t.meta.role === 'mean').length"
    )
    assert means == 2
    assert page.locator("#sweep-table tr.best td").first.inner_text() == "0.9"
    assert page.locator("#sweep-error").is_hidden()


def test_a_run_named_like_html_shows_as_text_and_runs_nothing(service: str, opened: Opened) -> None:
    run_id = make_run(service, XSS_NAME, tags={"note": "<script>alert(2)</script>"})
    log_curve(service, run_id, range(0, 20))
    page = opened.page
    page.goto(f"{service}/?view=runs")
    page.fill("#run-filters input[name=q]", "<img")
    cell = page.locator(f"#runs-table tr[data-run-id='{run_id}'] .run-name")
    assert cell.inner_text() == XSS_NAME
    assert page.locator("#runs-table img").count() == 0
    page.goto(f"{service}/?view=compare&runs={run_id}")
    wait_for_traces(page, "loss", 1)
    page.locator("#chart-loss .legendtext").first.wait_for()
    legend = page.locator("#chart-loss .legendtext").first.text_content() or ""
    assert legend.startswith(XSS_NAME)
    assert page.locator("#charts img, #summary-table img").count() == 0
    assert page.locator("#summary-table tbody td").nth(1).inner_text() == XSS_NAME
    page.wait_for_timeout(300)  # an onerror handler would have fired by now
    assert opened.problems.dialogs == []


def test_markup_in_params_and_names_shows_as_text_on_compare_and_sweep_charts(
    service: str, opened: Opened
) -> None:
    marked = make_run(
        service,
        f"{MARKUP} run",
        params={"optimizer": MARKUP, "momentum": 0.9, "lr": 0.05, "seed": 0},
    )
    plain = make_run(service, "plain-adam", params={"optimizer": "adam", "lr": 0.05, "seed": 0})
    for run_id in (marked, plain):
        log_curve(service, run_id, range(0, 20))
    page = opened.page
    page.goto(f"{service}/?view=compare&runs={marked},{plain}&keys=loss")
    wait_for_traces(page, "loss", 2)
    legends = page.locator("#chart-loss .legendtext").all_text_contents()
    assert any(text.startswith(f"{MARKUP} run ({MARKUP}, μ=0.9") for text in legends), legends
    page.goto(f"{service}/?view=sweep&runs={marked},{plain}&key=loss&by=optimizer")
    wait_for_function(page, "document.getElementById('sweep-final').data?.[0]?.x.length === 2")
    page.locator("#sweep-bands .legendtext").first.wait_for()
    ticks = page.locator("#sweep-final .xtick text").all_text_contents()
    assert sorted(ticks) == sorted([MARKUP, "adam"])
    bands = page.locator("#sweep-bands .legendtext").all_text_contents()
    assert f'optimizer="{MARKUP}"' in [text.replace('\\"', '"') for text in bands], bands
    values = page.locator("#sweep-table tbody td:first-child").all_text_contents()
    assert json.dumps(MARKUP) in values, values
    # Hover over the marked group's point: its label is text too.
    page.evaluate(
        """() => { const chart = document.getElementById('sweep-final');
                   const index = chart.data[0].x.findIndex((x) => x.includes('evil'));
                   Plotly.Fx.hover(chart, [{curveNumber: 0, pointNumber: index}]); }"""
    )
    hover = page.locator("#sweep-final .hoverlayer").text_content() or ""
    assert MARKUP in hover, hover
    assert page.locator("#pwn").count() == 0
    assert page.evaluate(EVIL_LINKS) == 0  # no element was made from the markup
    assert page.evaluate("window.cspViolations") == []


def test_the_dashboard_sends_a_content_security_policy_and_refuses_framing(
    service: str,
) -> None:
    for path in ("/", "/static/js/app.js", "/static/style.css", "/vendor/plotly.min.js"):
        headers = httpx.get(f"{service}{path}").headers
        directives = [d.split() for d in headers["content-security-policy"].split(";")]
        policy = {name: sources for name, *sources in directives}
        assert policy["default-src"] == ["'self'"], path
        assert policy["script-src"] == ["'self'"], path  # no inline or eval'd script
        assert policy["connect-src"] == ["'self'"], path
        assert policy["object-src"] == policy["base-uri"] == ["'none'"], path
        assert policy["frame-ancestors"] == ["'none'"], path
        assert headers["x-frame-options"] == "DENY", path
        assert headers["x-content-type-options"] == "nosniff", path
    # Swagger UI's page runs an inline script from a CDN: the policy is the dashboard's.
    assert "content-security-policy" not in httpx.get(f"{service}/docs").headers
    page = httpx.get(f"{service}/").text
    # Every script is a file the policy allows: none inline, no inline handlers.
    assert page.count("<script") == page.count('<script type="module" src="/static/')
    assert re.search(r"\son[a-z]+=", page) is None


def test_the_page_asks_for_the_token_once_per_browser_session(
    tmp_path: Path, sqlite_template: Path, browser: Browser, screenshots: Path
) -> None:
    database = tmp_path / "momentum.sqlite3"
    shutil.copyfile(sqlite_template, database)
    env = {"MOMENTUM_DATABASE_URL": f"sqlite:///{database}", "MOMENTUM_TOKEN": "s3cret"}
    with live_server(env, timeout=120) as url:
        headers = {"Authorization": "Bearer s3cret"}
        httpx.post(f"{url}{API}/runs", json={"name": "guarded-run"}, headers=headers)
        context = browser.new_context()
        page = context.new_page()
        problems = watch(page)
        try:
            page.goto(f"{url}/?view=runs")
            dialog = page.locator("#token-dialog")
            dialog.wait_for(state="visible")
            page.fill("#token-form input[name=token]", "wrong")
            page.click("#token-form button[type=submit]")
            wait_for_function(
                page, "document.getElementById('token-error').textContent.includes('not accepted')"
            )
            page.fill("#token-form input[name=token]", "s3cret")
            page.click("#token-form button[type=submit]")
            page.locator("#runs-table .run-name", has_text="guarded-run").wait_for()
            page.wait_for_selector("#live-status.on")  # EventSource authorized by ?token=
            page.reload()
            page.locator("#runs-table .run-name", has_text="guarded-run").wait_for()
            assert not dialog.is_visible()
            stored = page.evaluate("sessionStorage.getItem('momentum-token')")
            assert stored == "s3cret"
            page.screenshot(path=str(screenshots / "token.png"))
        finally:
            context.close()
        # The browser's 401s before the token are expected console noise; nothing else.
        assert [e for e in problems.console_errors if "401" not in e] == []
        assert problems.page_errors == []


def test_a_jobs_log_shows_live_in_its_panel_as_text(service: str, opened: Opened) -> None:
    page = opened.page
    config = {"dataset": "ravine", "model": "linear", "steps": 5, "framework": "numpy"}
    job = httpx.post(f"{service}{API}/jobs", json={"config": config, "name": "logged"}).json()
    claim = {"worker_id": "log-worker", "frameworks": ["numpy"]}
    lease = httpx.post(f"{service}{API}/jobs/claim", json=claim).json()
    assert lease["job"]["id"] == job["id"]
    first = "epoch 1 <b>not bold</b> <img src=x onerror=alert(1)>\n"

    def ship(offset: int, text: str) -> None:
        body = {"lease_token": lease["lease_token"], "offset": offset, "text": text}
        response = httpx.post(f"{service}{API}/jobs/{job['id']}/logs", json=body)
        assert response.status_code == 200, response.text

    ship(0, first)
    page.goto(f"{service}/?view=jobs")
    row = page.locator(f"#jobs-table tr[data-job-id='{job['id']}']")
    row.get_by_role("button", name="Log").click()
    log_text = "document.getElementById('job-log-text').textContent"
    wait_for_function(page, f"{log_text} === {json.dumps(first)}")
    assert page.locator("#job-log-title").inner_text() == f"Log of job {job['id']}"
    assert page.locator("#job-log-text b, #job-log-text img").count() == 0
    second = "epoch 2\n"
    ship(len(first.encode()), second)  # arrives while the panel is open
    wait_for_function(page, f"{log_text} === {json.dumps(first + second)}")
    done = {"lease_token": lease["lease_token"]}
    assert httpx.post(f"{service}{API}/jobs/{job['id']}/complete", json=done).status_code == 200
    wait_for_function(
        page, "document.getElementById('job-log-status').textContent === '(succeeded)'"
    )


def register_entry_point(url: str, name: str) -> EntryPointDefinition:
    """What a worker's momentum.toml would declare, registered as the worker does."""
    definition = EntryPointDefinition(
        command=["python", "train.py"],
        total_param="steps",
        params={
            "momentum": ParamSpec(type="float", default=0.9, min=0.0, max=1.0),
            "lr": ParamSpec(type="float", default=0.05, min=0.0, log=True),
            "steps": ParamSpec(type="int", default=100, min=1, max=100_000),
            "optimizer": ParamSpec(type="str", default="momentum", choices=["sgd", "momentum"]),
            "nesterov": ParamSpec(type="bool", default=False),
            "note": ParamSpec(type="str", default="plain"),
        },
    )
    body = {**definition.model_dump(mode="json"), "digest": definition.compute_digest()}
    response = httpx.put(f"{url}{API}/entry-points/{name}", json=body)
    assert response.status_code in (200, 201), response.text
    return definition


def submit_job_form(page: Page, expected: str) -> None:
    page.locator("#job-form button[type=submit]").click()
    wait_for_function(
        page,
        f"document.getElementById('job-form-result').textContent.includes({json.dumps(expected)})",
    )


def test_the_job_form_draws_an_entry_points_params_and_submits_a_job_and_a_sweep(
    service: str, opened: Opened
) -> None:
    page = opened.page
    register_entry_point(service, "dash-train")
    page.goto(f"{service}/?view=jobs")
    form = page.locator("#job-form")
    form.locator("#job-entry-point").select_option("dash-train")
    fields = form.locator("#entry-point-fields")
    fields.locator("input[name=momentum]").wait_for()
    assert not form.locator("select[name=framework]").is_visible()
    labels = [label.inner_text() for label in fields.locator("label").all()]
    assert any(label.startswith("momentum (float, 0 – 1, list)") for label in labels), labels
    assert any(label.startswith("lr (float, ≥ 0, log, list)") for label in labels), labels
    assert any(label.startswith("steps (int, 1 – 100000, list)") for label in labels), labels
    assert fields.locator("input[name=momentum]").input_value() == "0.9"
    assert fields.locator("input[name=steps]").input_value() == "100"
    assert fields.locator("input[name=note]").input_value() == "plain"
    optimizer = fields.locator("select[name=optimizer]")
    assert optimizer.locator("option").all_inner_texts() == ["sgd", "momentum"]
    assert optimizer.evaluate("s => s.selectedOptions[0].textContent") == "momentum"
    assert not fields.locator("input[name=nesterov]").is_checked()

    fields.locator("input[name=steps]").fill("7")
    optimizer.select_option(label="sgd")
    fields.locator("input[name=nesterov]").check()
    submit_job_form(page, "queued")
    job_id = int(page.locator("#job-form-result").inner_text().split()[1])
    job = httpx.get(f"{service}{API}/jobs/{job_id}").json()
    assert job["entry_point"] == "dash-train"
    assert job["params"] == {
        "momentum": 0.9, "lr": 0.05, "steps": 7, "optimizer": "sgd", "nesterov": True,
        "note": "plain",
    }  # fmt: skip
    page.locator(f"#jobs-table tr[data-job-id='{job_id}']").wait_for()

    fields.locator("input[name=momentum]").fill("0.5, 0.9")
    form.locator("input[name=name]").fill("entry-sweep")
    submit_job_form(page, "queued 2 jobs")
    sweeps = httpx.get(f"{service}{API}/sweeps").json()["items"]
    sweep = next(s for s in sweeps if s["name"] == "entry-sweep")
    assert sweep["entry_point"] == "dash-train"
    params = [httpx.get(f"{service}{API}/jobs/{j}").json()["params"] for j in sweep["job_ids"]]
    assert sorted(p["momentum"] for p in params) == [0.5, 0.9]
    assert {(p["steps"], p["optimizer"], p["nesterov"]) for p in params} == {(7, "sgd", True)}
    httpx.post(f"{service}{API}/sweeps/{sweep['id']}/cancel")
    httpx.post(f"{service}{API}/jobs/{job_id}/cancel")


def test_an_out_of_range_param_shows_the_services_message_beside_it(
    service: str, opened: Opened
) -> None:
    page = opened.page
    register_entry_point(service, "dash-range")
    page.goto(f"{service}/?view=jobs")
    form = page.locator("#job-form")
    form.locator("#job-entry-point").select_option("dash-range")
    fields = form.locator("#entry-point-fields")
    fields.locator("input[name=momentum]").fill("1.5")
    opened.expect_refusal(422)
    form.locator("button[type=submit]").click()
    wait_for_function(
        page,
        "document.querySelector('#entry-point-fields .field-error[data-for=momentum]')"
        ".textContent.length > 0",
    )
    message = fields.locator(".field-error[data-for=momentum]").inner_text()
    assert "at most 1.0" in message, message
    assert form.locator(".field-error[data-for=_form]").inner_text() == ""
    jobs = httpx.get(f"{service}{API}/jobs", params={"limit": 200}).json()["items"]
    assert not [j for j in jobs if j.get("entry_point") == "dash-range"]
    # Back to the built-in trainer: its own fields, the entry point's gone.
    form.locator("#job-entry-point").select_option("")
    assert form.locator("select[name=framework]").is_visible()
    assert fields.locator("input").count() == 0


def test_a_ringing_run_shows_a_badge_and_a_marked_region_with_its_message(
    service: str, opened: Opened
) -> None:
    """Diagnosis (#21): live findings as a badge on the runs table, and on the compare
    chart as a marked region with the finding's message."""
    from tests.diagnosis_curves import STEPS, ringing

    run_id = make_run(service, "diag-ringing", momentum=0.99)
    values = ringing().tolist()
    batch = [{"key": "loss", "step": step, "value": values[step]} for step in STEPS.tolist()]
    assert httpx.post(f"{service}{API}/runs/{run_id}/metrics", json={"points": batch}).is_success
    page = opened.page
    page.goto(f"{service}/?view=runs")
    page.fill("#run-filters input[name=q]", "diag-")
    badge = f"#runs-table tr[data-run-id='{run_id}'] .badge.finding-oscillation"
    page.wait_for_selector(badge, timeout=30_000)  # live diagnosis runs every 2 s
    assert page.locator(badge).inner_text() == "oscillation"
    page.goto(f"{service}/?view=compare&runs={run_id}&keys=loss")
    wait_for_function(page, "document.getElementById('chart-loss')?.layout?.shapes?.length === 1")
    shape = page.evaluate("document.getElementById('chart-loss').layout.shapes[0]")
    assert shape["type"] == "rect" and shape["x0"] == 0 and shape["x1"] > 1500
    message = page.locator(".findings li.finding-oscillation").inner_text()
    assert "loss oscillates with a period of about" in message


def test_findings_of_many_runs_are_listed_not_painted_over_the_curves(
    service: str, opened: Opened
) -> None:
    """Past 12 flagged runs a chart keeps its curves clear: every finding is in the list
    under it, none drawn as a band."""
    from tests.diagnosis_curves import STEPS, ringing

    values = ringing().tolist()
    batch = [{"key": "loss", "step": step, "value": values[step]} for step in STEPS.tolist()]
    ids = [make_run(service, f"crowd-{n}", seed=n, project="crowd") for n in range(13)]
    for run_id in ids:
        logged = httpx.post(f"{service}{API}/runs/{run_id}/metrics", json={"points": batch})
        assert logged.is_success
    flagged = lambda: httpx.get(  # noqa: E731
        f"{service}{API}/runs", params={"project": "crowd", "finding": "oscillation"}
    ).json()["total"]
    wait_until(lambda: flagged() == 13, timeout=60)  # live diagnosis runs every 2 s
    page = opened.page
    page.goto(f"{service}/?view=compare&runs={','.join(map(str, ids))}&keys=loss")
    wait_for_function(
        page, "document.querySelectorAll('.findings li.finding-oscillation').length === 13"
    )
    assert page.evaluate("document.getElementById('chart-loss').data.length") >= 1
    assert not page.evaluate("document.getElementById('chart-loss').layout.shapes?.length")


# A 2×2 PNG (red, green / blue, white), as MLflow's log_image would upload it.
TINY_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000002000000020802000000fdd49a73"
    "0000001249444154789c63f8cfc0c000c20cff8100001fee05fb0bd9688b"
    "0000000049454e44ae426082"
)


def test_a_runs_artifacts_are_listed_and_its_images_shown(service: str, opened: Opened) -> None:
    run_id = make_run(service, "with-artifacts")
    base = f"{service}/api/2.0/mlflow-artifacts/artifacts/0/{run_id}/artifacts"
    for path, body in (("plots/tiny.png", TINY_PNG), ("config.json", b'{"lr": 0.1}')):
        assert httpx.put(f"{base}/{path}", content=body).status_code == 200
    page = opened.page
    page.goto(f"{service}/?view=compare&runs={run_id}")
    section = page.locator(f"#artifacts .run-artifacts[data-run-id='{run_id}']")
    section.wait_for()
    paths = section.locator("li").evaluate_all("items => items.map((i) => i.dataset.path)")
    assert paths == ["config.json", "plots/tiny.png"]
    wait_for_function(
        page,
        """() => { const img = document.querySelector("#artifacts img.artifact-image");
                   return img && img.complete && img.naturalWidth === 2; }""",
    )
    source = page.locator("#artifacts img.artifact-image").get_attribute("src")
    assert source is not None and source.startswith("blob:")
    assert section.locator("li[data-path='config.json'] a[download]").count() == 1
