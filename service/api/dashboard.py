"""The dashboard: static files from the package, and the charting library from its own
package. Open always, like /docs: the page asks for a token only when the API it calls
answers 401.

Plotly.js comes as declared dependencies, never a copy in the repository: three pinned
npm bundles (service/vendor/package-lock.json) that `npm ci --prefix service/vendor`
installs, each the smallest that draws what a view needs:
- basic (1.2 MB: scatter, bar, pie), loaded with every page: runs, compare, sweeps;
- cartesian (1.5 MB: adds heatmap), loaded when a sweep view draws a heatmap;
- strict (5.2 MB: adds parcoords and the WebGL traces, with its WebGL code compiled ahead
  of time, so it runs under a policy without 'unsafe-eval'), loaded when a view draws
  parallel coordinates or WebGL curves.
Without npm, the full bundle (4.8 MB) of the `plotly` Python package stands in for basic
and cartesian; it compiles WebGL code with `new Function`, which the policy refuses, so
the strict bundle has no stand-in: the page says what to install instead."""

from __future__ import annotations

import logging
from importlib.util import find_spec
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

SERVICE_DIR = Path(__file__).resolve().parent.parent
STATIC_DIR = SERVICE_DIR / "static"
NODE_MODULES = SERVICE_DIR / "vendor/node_modules"
BASIC_PLOTLY_JS = NODE_MODULES / "plotly.js-basic-dist-min/plotly-basic.min.js"
CARTESIAN_PLOTLY_JS = NODE_MODULES / "plotly.js-cartesian-dist-min/plotly-cartesian.min.js"
STRICT_PLOTLY_JS = NODE_MODULES / "plotly.js-strict-dist-min/plotly-strict.min.js"
# The same file a `pip install plotly` puts on disk.
FULL_PLOTLY_JS = "package_data/plotly.min.js"
# Revalidate every time (answered 304 from ETag/Last-Modified when unchanged), so an
# upgraded service never runs against a stale module in the browser's cache.
REVALIDATE = {"Cache-Control": "no-cache"}
CACHE_A_DAY = {"Cache-Control": "public, max-age=86400"}
# The page draws user text (run names, params, keys) and holds a token: should any of
# that text ever reach the DOM as markup, the browser still runs no script but the
# service's own files, sends nothing elsewhere, and no other site may frame the page.
BASE_POLICY = [
    "default-src 'self'",
    "script-src 'self'",
    "img-src 'self' data: blob:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
]
# The npm bundles add one empty <style> and fill it through CSSOM (insertRule, which the
# policy does not govern): the empty string's hash allows exactly that element. The
# strict bundle also writes its map library's stylesheet (MAP_STYLESHEET: the hash of
# that exact text, in 4.1.1) into a <style> as it loads. Drawing a heatmap or parallel
# coordinates sets two `style` attributes: an empty one, and the heatmap's
# pixelated-image declarations (PIXELATED_STYLE); 'unsafe-hashes' allows exactly those
# two values and no other inline style. The full bundle (no npm) needs 'unsafe-inline'.
EMPTY_STYLE = "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='"
MAP_STYLESHEET = "'sha256-ji27qzEtxXZW+7dun6UwjHXJ18e6WAin1VvNtkzIE/o='"
PIXELATED_STYLE = "'sha256-AR/cKIZjWPcPmBUPDA6oti9XBiTbJvz0Cro2J1VzzS8='"


def locked_down() -> dict[str, str]:
    """The headers of every dashboard file: its policy, no framing, no type sniffing."""
    if BASIC_PLOTLY_JS.is_file():
        styles = [
            f"style-src 'self' {EMPTY_STYLE} {MAP_STYLESHEET}",
            f"style-src-attr 'unsafe-hashes' {EMPTY_STYLE} {PIXELATED_STYLE}",
        ]
    else:
        styles = ["style-src 'self' 'unsafe-inline'"]
    policy = "; ".join([*BASE_POLICY, *styles])
    return {
        "Content-Security-Policy": policy,
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
    }


router = APIRouter(include_in_schema=False)
log = logging.getLogger(__name__)


class DashboardFiles(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update({**REVALIDATE, **locked_down()})
        return response


@router.get("/")
def dashboard() -> FileResponse:
    """The dashboard's single page."""
    return FileResponse(STATIC_DIR / "index.html", headers={**REVALIDATE, **locked_down()})


@router.get("/vendor/plotly.min.js")
def plotly_bundle() -> FileResponse:
    """Plotly.js, the basic bundle when installed, else the full one; cached for a day."""
    return _bundle_response(plotly_path())


@router.get("/vendor/plotly-cartesian.min.js")
def plotly_cartesian_bundle() -> FileResponse:
    """Plotly.js with heatmaps: the cartesian bundle, else the full one."""
    cartesian = CARTESIAN_PLOTLY_JS if CARTESIAN_PLOTLY_JS.is_file() else None
    return _bundle_response(cartesian or _full_plotly_path())


@router.get("/vendor/plotly-strict.min.js", responses={404: {"description": "npm has not run."}})
def plotly_strict_bundle() -> Response:
    """Plotly.js with parallel coordinates and WebGL, runnable without eval: 404 without npm."""
    if not STRICT_PLOTLY_JS.is_file():
        text = "the strict Plotly.js bundle is not installed: npm ci --prefix service/vendor"
        return Response(text, status_code=404, media_type="text/plain", headers=locked_down())
    return _bundle_response(STRICT_PLOTLY_JS)


def _bundle_response(path: Path) -> FileResponse:
    headers = {**CACHE_A_DAY, **locked_down()}
    return FileResponse(path, media_type="text/javascript", headers=headers)


def plotly_path() -> Path:
    """The Plotly.js bundle the dashboard loads: the basic one when npm installed it."""
    return BASIC_PLOTLY_JS if BASIC_PLOTLY_JS.is_file() else _full_plotly_path()


def _full_plotly_path() -> Path:
    # find_spec locates the package without importing it (importing plotly takes ~1 s).
    spec = find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the plotly package is not installed: pip install plotly")
    return Path(next(iter(spec.submodule_search_locations))) / FULL_PLOTLY_JS


def mount_static(app: FastAPI) -> None:
    if not BASIC_PLOTLY_JS.is_file():
        log.warning(
            "dashboard: serving the full Plotly.js bundle (4.8 MB), and no parallel coordinates "
            "or WebGL charts; `npm ci --prefix service/vendor` installs the pinned bundles: the "
            "1.2 MB basic one draws the first chart sooner"
        )
    app.mount("/static", DashboardFiles(directory=STATIC_DIR), name="static")
