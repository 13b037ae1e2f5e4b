"""Run MLflow's own REST tracking suite against `momentum serve` (issue #20).

MLflow's tests/tracking/test_rest_tracking.py starts MLflow's server in-process for each
test. This script runs that file, unchanged but for two fixture names, with the server
swapped for `momentum serve` on a fresh SQLite database per test, on a free loopback
port; only the tests whose requests stay within the tracking endpoints this service
serves are selected (SELECTED below). It prints one line per test and the totals.

    python scripts/mlflow_rest_suite.py /path/to/mlflow/tests/tracking/test_rest_tracking.py

The file is MLflow's (Apache-2.0) and never part of this repository: take it from an
MLflow checkout of the release you test against. Nothing is downloaded. The harness
(stand-ins for MLflow's test helpers, and for the Flask-based server modules the file
imports but the selected tests never use) is written to a scratch folder; see
docs/mlflow.md for the numbers measured and what is left out and why.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# The tests whose requests stay within experiments, runs, metrics, params, tags, batch,
# search, histories (bulk, bulk-interval), datasets (log-inputs, search-datasets),
# artifacts, delete/restore and run lifecycle. Left out: logged models, the model
# registry, traces and assessments, GenAI datasets, scorers, the gateway, prompt lab,
# GraphQL, workspaces, and tests that drive MLflow's server in-process (Flask).
SELECTED = (
    "test_create_get_search_experiment test_create_experiment_validation "
    "test_delete_restore_experiment test_delete_restore_experiment_cli test_rename_experiment "
    "test_rename_experiment_cli test_create_run_all_args test_create_run_defaults "
    "test_log_metrics_params_tags test_log_metric_validation test_log_param_validation "
    "test_log_param_with_empty_string_as_value test_set_tag_with_empty_string_as_value "
    "test_log_batch_containing_params_and_tags_with_empty_string_values "
    "test_set_tag_validation test_set_experiment_tag "
    "test_set_experiment_tag_with_empty_string_as_value test_delete_experiment_tag "
    "test_delete_tag test_log_batch test_log_batch_validation test_set_terminated_defaults "
    "test_set_terminated_status test_artifacts test_search_pagination test_search_validation "
    "test_get_experiment_by_name test_get_experiment test_search_experiments "
    "test_get_metric_history_bulk_rejects_invalid_requests "
    "test_get_metric_history_bulk_returns_expected_metrics_in_expected_order "
    "test_get_metric_history_bulk_respects_max_results "
    "test_get_metric_history_respects_max_results test_get_metric_history_with_page_token "
    "test_get_metric_history_bulk_interval_rejects_invalid_requests "
    "test_get_metric_history_bulk_interval_respects_max_results "
    "test_search_dataset_handler_rejects_invalid_requests "
    "test_search_dataset_handler_returns_expected_results test_log_input test_log_inputs "
    "test_log_inputs_validation test_update_run_name_without_changing_status "
    "test_upload_artifact_handler_rejects_invalid_requests test_upload_artifact_handler "
    "test_suppress_url_printing test_log_url_uses_legacy_route_without_workspace"
).split()

HELPERS = {
    "tests/__init__.py": "",
    "tests/integration/__init__.py": "",
    "tests/tracking/__init__.py": "",
    "tests/helper_functions.py": """
import socket


def get_safe_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
""",
    "tests/integration/utils.py": """
from click.testing import CliRunner


def invoke_cli_runner(*args, **kwargs):
    result = CliRunner().invoke(*args, **kwargs)
    assert result.exit_code == 0, f"{result.output}\\n{result.exception!r}"
    return result
""",
    "tests/tracking/integration_test_utils.py": """
import requests


def _send_rest_tracking_post_request(tracking_server_uri, api_path, json_payload, auth=None):
    return requests.post(f"{tracking_server_uri}{api_path}", json=json_payload, auth=auth)


def _init_server(*args, **kwargs):
    raise NotImplementedError("MLflow's own server is not part of this harness")


class ServerThread:
    def __init__(self, *args, **kwargs):
        raise NotImplementedError("MLflow's own server is not part of this harness")
""",
}

CONFTEST = """
import contextlib
import importlib
import os
import shutil
import subprocess
import sys
import time
import types

import httpx
import mlflow
import pytest
from mlflow import MlflowClient

SELECTED = set(os.environ["MOMENTUM_SUITE_SELECTED"].split(","))


def _stand_in(name, **attrs):
    # Only where the real module cannot load (MLflow's server needs Flask, which the
    # client-only mlflow-skinny lacks); the selected tests never call these.
    try:
        importlib.import_module(name)
        return
    except Exception:
        pass
    parent, _, leaf = name.rpartition(".")
    if parent:
        _stand_in(parent)
    module = types.ModuleType(name)
    module.__path__ = []
    module.__dict__.update(attrs)
    sys.modules[name] = module
    if parent:
        setattr(sys.modules[parent], leaf, module)


def _unavailable(*args, **kwargs):
    raise NotImplementedError("MLflow's server is not part of this harness")


_stand_in("flask", Flask=_unavailable)
_stand_in("mlflow.server.handlers", initialize_backend_stores=_unavailable,
          _get_sampled_steps_from_steps=_unavailable)
_stand_in("mlflow.server.fastapi_app", app=None)
_stand_in("mlflow.server.auth.permissions", READ="READ")
_stand_in("mlflow.tracking._workspace.context", WorkspaceContext=contextlib.nullcontext,
          clear_workspace=lambda: None, get_current_workspace=lambda: None)


def pytest_collection_modifyitems(config, items):
    kept = [item for item in items if item.originalname in SELECTED]
    config.hook.pytest_deselected(items=[item for item in items if item not in kept])
    items[:] = kept


@pytest.fixture(scope="session")
def momentum_template(tmp_path_factory):
    from service import Settings
    from service.migrate import upgrade

    path = tmp_path_factory.mktemp("template") / "momentum.sqlite3"
    upgrade(Settings(database_url=f"sqlite:///{path}"))
    return path


@pytest.fixture
def store_type():
    return "momentum"


def _wait_ready(url, process):
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"momentum serve exited with {process.returncode}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/readyz", timeout=1.0).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError("momentum serve was not ready in time")


@pytest.fixture
def mlflow_client(tmp_path, momentum_template):
    from tests.helper_functions import get_safe_port

    database = tmp_path / "momentum.sqlite3"
    shutil.copyfile(momentum_template, database)
    port = get_safe_port()
    env = {**os.environ, "MOMENTUM_DATABASE_URL": f"sqlite:///{database}",
           "MOMENTUM_DATA_DIR": str(tmp_path / "momentum-data")}
    argv = [sys.executable, "-m", "momentum.cli", "serve", "--port", str(port),
            "--log-level", "warning"]
    process = subprocess.Popen(argv, env=env)
    url = f"http://127.0.0.1:{port}"
    previous = mlflow.get_tracking_uri()
    try:
        _wait_ready(url, process)
        mlflow.set_tracking_uri(url)
        yield MlflowClient(url)
    finally:
        mlflow.set_tracking_uri(previous)
        process.terminate()
        process.wait(timeout=30)
"""


def build_harness(upstream: Path, workdir: Path) -> Path:
    """Write the stand-in helpers, the conftest and the renamed-fixture copy of the file."""
    for relative, text in {**HELPERS, "tests/tracking/conftest.py": CONFTEST}.items():
        target = workdir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text.lstrip("\n"))
    source = upstream.read_text()
    # The file's own fixtures start MLflow's server; renamed, ours (in conftest) serve.
    source = re.sub(r"^def (mlflow_client|store_type)\(", r"def _upstream_\1(", source, flags=re.M)
    test_file = workdir / "tests/tracking/test_rest_tracking.py"
    test_file.write_text(source)
    return test_file


def run_suite(test_file: Path, workdir: Path, extra: list[str]) -> Path:
    """Run the selected tests one after another; returns the JUnit report's path."""
    report = workdir / "report.xml"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(workdir), str(REPO)]),
        "MOMENTUM_SUITE_SELECTED": ",".join(SELECTED),
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    argv = [sys.executable, "-m", "pytest", str(test_file), "-q", "-p", "no:cacheprovider"]
    argv += ["--rootdir", str(workdir), "-o", "addopts=", f"--junitxml={report}", *extra]
    subprocess.run(argv, cwd=workdir, env=env, check=False)
    return report


def summarize(report: Path) -> int:
    """Print one line per test and the totals; returns the number that did not pass."""
    cases = ElementTree.parse(report).getroot().iter("testcase")
    seen: set[str] = set()
    passed = failed = 0
    for case in cases:
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        message = "" if problem is None else (problem.get("message") or "").splitlines()[0]
        seen.add(case.get("name", "").split("[")[0])
        passed, failed = (passed + 1, failed) if problem is None else (passed, failed + 1)
        print(f"{'pass' if problem is None else 'FAIL':4}  {case.get('name')}  {message[:90]}")
    absent = [name for name in SELECTED if name not in seen]
    print(
        f"\nselected {len(SELECTED)} tests ({passed + failed} cases run): "
        f"{passed} passed, {failed} failed; not in this file: {', '.join(absent) or 'none'}"
    )
    return failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("test_file", type=Path, help="MLflow's test_rest_tracking.py")
    parser.add_argument("--workdir", type=Path, help="where to build the harness (kept)")
    args, pytest_args = parser.parse_known_args()  # the rest goes to pytest
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="mlflow-suite-"))
    test_file = build_harness(args.test_file.resolve(), workdir.resolve())
    report = run_suite(test_file, workdir.resolve(), [a for a in pytest_args if a != "--"])
    return 1 if summarize(report) else 0


if __name__ == "__main__":
    sys.exit(main())
