"""`pip install .` ships what the service needs at run time: migrations included."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_contains_migrations_and_packages(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("momentum_monitor-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    versions = sorted(p.name for p in (ROOT / "migrations" / "versions").glob("*.py"))
    for name in ["env.py", "script.py.mako", *(f"versions/{v}" for v in versions)]:
        assert f"migrations/{name}" in names, name
    for module in ["momentum/cli.py", "service/app.py", "trainer/loop.py"]:
        assert module in names, module
    static = ROOT / "service" / "static"
    dashboard = sorted(str(p.relative_to(ROOT)) for p in static.rglob("*") if p.is_file())
    assert "service/static/index.html" in dashboard
    for asset in dashboard:
        assert asset in names, asset
    for bundle in ("basic", "cartesian", "strict"):
        path = f"service/vendor/node_modules/plotly.js-{bundle}-dist-min/plotly-{bundle}.min.js"
        assert path in names, path
    assert not any(name.startswith("tests/") for name in names)
