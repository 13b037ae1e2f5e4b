"""What the service hands the browser before any chart: the Plotly.js bundle it picks,
and a preload hint for every dashboard module."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from service.api import dashboard


def test_the_basic_plotly_bundle_is_installed_and_served() -> None:
    assert dashboard.BASIC_PLOTLY_JS.is_file(), "run: npm ci --prefix service/vendor"
    assert dashboard.plotly_path() == dashboard.BASIC_PLOTLY_JS
    assert dashboard.plotly_path().read_text()[:200].count("plotly.js (basic - minified) v4.") == 1


def test_without_npm_the_full_bundle_of_the_plotly_package_is_served(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    basic_size = dashboard.BASIC_PLOTLY_JS.stat().st_size
    monkeypatch.setattr(dashboard, "BASIC_PLOTLY_JS", tmp_path / "not-installed.js")
    served = dashboard.plotly_path()
    assert served.parts[-3:] == ("plotly", "package_data", "plotly.min.js")
    assert served.stat().st_size > 3 * basic_size


def test_every_dashboard_module_is_preloaded_with_the_page() -> None:
    page = (dashboard.STATIC_DIR / "index.html").read_text()
    preloaded = set(re.findall(r'<link rel="modulepreload" href="/static/js/([\w-]+\.js)">', page))
    modules = {path.name for path in (dashboard.STATIC_DIR / "js").glob("*.js")} - {"app.js"}
    assert preloaded == modules
    assert '<link rel="preload" href="/vendor/plotly.min.js" as="script">' in page


def test_styles_need_unsafe_inline_only_with_the_full_bundle(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The basic bundle's one empty <style> is allowed by its hash; the full bundle, the
    fallback without npm, also writes its map library's stylesheet into a <style>, which
    needs 'unsafe-inline'. Scripts never do."""
    policy = dashboard.locked_down()["Content-Security-Policy"]
    assert f"style-src 'self' {dashboard.EMPTY_STYLE}" in policy
    assert "unsafe" not in policy
    monkeypatch.setattr(dashboard, "BASIC_PLOTLY_JS", tmp_path / "not-installed.js")
    policy = dashboard.locked_down()["Content-Security-Policy"]
    assert "style-src 'self' 'unsafe-inline'" in policy
    assert "script-src 'self';" in policy
