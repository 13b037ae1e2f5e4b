"""The dashboard: static files from the package, and the charting library from its own
package. Open always, like /docs: the page asks for a token only when the API it calls
answers 401.

Plotly.js comes as a declared dependency, never a copy in the repository: the basic
partial bundle (1.2 MB; npm `plotly.js-basic-dist-min`, pinned in service/vendor/) when
`npm ci --prefix service/vendor` has installed it, else the full bundle (4.8 MB) that the
`plotly` Python package ships. The dashboard draws only scatter traces, which both have;
compiling the full bundle costs a fresh browser 1-2 s more before the first chart."""

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
BASIC_PLOTLY_JS = SERVICE_DIR / "vendor/node_modules/plotly.js-basic-dist-min/plotly-basic.min.js"
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
# The basic bundle adds one empty <style> and fills it through CSSOM (insertRule, which
# the policy does not govern): the empty string's hash allows exactly that element. The
# full bundle also writes its map library's stylesheet into a <style>, which only
# 'unsafe-inline' allows.
EMPTY_STYLE = "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='"


def locked_down() -> dict[str, str]:
    """The headers of every dashboard file: its policy, no framing, no type sniffing."""
    styles = EMPTY_STYLE if BASIC_PLOTLY_JS.is_file() else "'unsafe-inline'"
    policy = "; ".join([*BASE_POLICY, f"style-src 'self' {styles}"])
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
    headers = {**CACHE_A_DAY, **locked_down()}
    return FileResponse(plotly_path(), media_type="text/javascript", headers=headers)


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
            "dashboard: serving the full Plotly.js bundle (4.8 MB); `npm ci --prefix "
            "service/vendor` installs the 1.2 MB basic one, which draws the first chart sooner"
        )
    app.mount("/static", DashboardFiles(directory=STATIC_DIR), name="static")
