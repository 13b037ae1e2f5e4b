"""The dashboard: static files from the package, and the charting library from its own
package (Plotly.js as the `plotly` distribution ships it). Open always, like /docs: the
page asks for a token only when the API it calls answers 401."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
# The same file a `pip install plotly` puts on disk: a declared dependency, not a copy.
PLOTLY_JS = "package_data/plotly.min.js"
# Revalidate every time (answered 304 from ETag/Last-Modified when unchanged), so an
# upgraded service never runs against a stale module in the browser's cache.
REVALIDATE = {"Cache-Control": "no-cache"}
CACHE_A_DAY = {"Cache-Control": "public, max-age=86400"}

router = APIRouter(include_in_schema=False)


class DashboardFiles(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(REVALIDATE)
        return response


@router.get("/")
def dashboard() -> FileResponse:
    """The dashboard's single page."""
    return FileResponse(STATIC_DIR / "index.html", headers=REVALIDATE)


@router.get("/vendor/plotly.min.js")
def plotly_bundle() -> FileResponse:
    """Plotly.js from the installed `plotly` package; cached for a day."""
    return FileResponse(_plotly_path(), media_type="text/javascript", headers=CACHE_A_DAY)


def _plotly_path() -> Path:
    # find_spec locates the package without importing it (importing plotly takes ~1 s).
    spec = find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the plotly package is not installed: pip install plotly")
    return Path(next(iter(spec.submodule_search_locations))) / PLOTLY_JS


def mount_static(app: FastAPI) -> None:
    app.mount("/static", DashboardFiles(directory=STATIC_DIR), name="static")
