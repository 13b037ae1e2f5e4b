"""What the service hands the browser before any chart: the Plotly.js bundles it picks,
the policy that lets exactly their inline styles through, and a preload hint for every
dashboard module."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

import pytest

from service.api import dashboard


def test_the_basic_plotly_bundle_is_installed_and_served() -> None:
    assert dashboard.BASIC_PLOTLY_JS.is_file(), "run: npm ci --prefix service/vendor"
    assert dashboard.plotly_path() == dashboard.BASIC_PLOTLY_JS
    assert dashboard.plotly_path().read_text()[:200].count("plotly.js (basic - minified) v4.") == 1


def test_the_cartesian_and_strict_bundles_are_installed_and_served() -> None:
    cartesian = dashboard.plotly_cartesian_bundle()
    strict = dashboard.plotly_strict_bundle()
    assert Path(cartesian.path) == dashboard.CARTESIAN_PLOTLY_JS
    assert Path(getattr(strict, "path", "")) == dashboard.STRICT_PLOTLY_JS
    head = dashboard.STRICT_PLOTLY_JS.read_text()[:200]
    assert "plotly.js (strict - minified) v4." in head
    assert "(cartesian - minified) v4." in dashboard.CARTESIAN_PLOTLY_JS.read_text()[:200]
    for response in (cartesian, strict):
        assert response.headers["cache-control"] == "public, max-age=86400"
        assert "script-src 'self';" in response.headers["content-security-policy"]


def _sha256(text: str) -> str:
    return f"'sha256-{base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()}'"


def test_the_policy_allows_exactly_the_inline_styles_the_pinned_bundles_write() -> None:
    """The strict bundle's map stylesheet and the heatmap's pixelated-image style, hashed
    from the installed bundles: a new pinned version with other text fails here first."""
    strict = dashboard.STRICT_PLOTLY_JS.read_text()
    stylesheet = re.search(r"\.textContent='(\.maplibregl-map\{[^']*)',document\.head", strict)
    assert stylesheet is not None
    assert _sha256(stylesheet.group(1)) == dashboard.MAP_STYLESHEET
    for bundle in (dashboard.CARTESIAN_PLOTLY_JS, dashboard.STRICT_PLOTLY_JS):
        found = re.search(r"CSS_DECLARATIONS=(\[\[.*?\]\])", bundle.read_text())
        assert found is not None
        style = "".join(": ".join(pair) + "; " for pair in json.loads(found.group(1)))
        assert _sha256(style) == dashboard.PIXELATED_STYLE
    policy = dashboard.locked_down()["Content-Security-Policy"]
    attributes = (
        f"style-src-attr 'unsafe-hashes' {dashboard.EMPTY_STYLE} {dashboard.PIXELATED_STYLE}"
    )
    assert attributes in policy.split("; ")


def test_without_npm_the_full_bundle_of_the_plotly_package_is_served(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    basic_size = dashboard.BASIC_PLOTLY_JS.stat().st_size
    monkeypatch.setattr(dashboard, "BASIC_PLOTLY_JS", tmp_path / "not-installed.js")
    monkeypatch.setattr(dashboard, "CARTESIAN_PLOTLY_JS", tmp_path / "not-installed.js")
    monkeypatch.setattr(dashboard, "STRICT_PLOTLY_JS", tmp_path / "not-installed.js")
    served = dashboard.plotly_path()
    assert served.parts[-3:] == ("plotly", "package_data", "plotly.min.js")
    assert served.stat().st_size > 3 * basic_size
    assert Path(dashboard.plotly_cartesian_bundle().path) == served  # it has heatmaps too
    # It compiles WebGL code with `new Function`, which the policy refuses: no stand-in.
    missing = dashboard.plotly_strict_bundle()
    assert missing.status_code == 404
    assert b"npm ci --prefix service/vendor" in missing.body


def test_every_dashboard_module_is_preloaded_with_the_page() -> None:
    page = (dashboard.STATIC_DIR / "index.html").read_text()
    preloaded = set(re.findall(r'<link rel="modulepreload" href="/static/js/([\w-]+\.js)">', page))
    modules = {path.name for path in (dashboard.STATIC_DIR / "js").glob("*.js")} - {"app.js"}
    assert preloaded == modules
    assert '<link rel="preload" href="/vendor/plotly.min.js" as="script">' in page


def test_styles_need_unsafe_inline_only_with_the_full_bundle(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The npm bundles' empty <style> and the strict bundle's map stylesheet are allowed by
    their hashes; the full bundle, the fallback without npm, needs 'unsafe-inline' for
    styles. Scripts never do."""
    policy = dashboard.locked_down()["Content-Security-Policy"]
    assert f"style-src 'self' {dashboard.EMPTY_STYLE} {dashboard.MAP_STYLESHEET}" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    monkeypatch.setattr(dashboard, "BASIC_PLOTLY_JS", tmp_path / "not-installed.js")
    policy = dashboard.locked_down()["Content-Security-Policy"]
    assert "style-src 'self' 'unsafe-inline'" in policy
    assert "style-src-attr" not in policy  # its hashes would switch 'unsafe-inline' off
    assert "script-src 'self';" in policy
