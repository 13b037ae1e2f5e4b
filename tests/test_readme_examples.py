"""The README's "Log from your own code" examples, run as written against the real service,
and its framework tables, checked against `TrainingConfig`: the text cannot drift."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from momentum.contract.training import TrainingConfig
from tests.support import live_server

README = Path(__file__).resolve().parent.parent / "README.md"
DATASETS = ("ravine", "spirals", "blobs", "digits")
FRAMEWORKS = ("torch", "numpy", "keras")
# The run each example creates, its logged steps, and keys logged once per epoch.
EXAMPLES = [
    ("numpy-momentum", 200, set()),
    ("keras-digits", 3 * 23, {"val_loss", "val_accuracy"}),  # 1437 train rows / 64 per batch
    ("torch-sgd-momentum", 200, set()),
    ("torch-tensorboard", 200, set()),  # only the import changed: momentum.tensorboard
    ("torch-wandb", 200, set()),  # only the import changed: momentum.wandb
]


def section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"\n{title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def table_rows(text: str, first_header: str) -> list[list[str]]:
    """The body rows of the markdown table whose first header cell is `first_header`."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def names(cell: str) -> list[str]:
    return re.findall(r"`([a-z_]+)`", cell)


def accepted(**fields: Any) -> bool:
    try:
        TrainingConfig(**fields)
    except ValidationError:
        return False
    return True


def test_optimizer_table_is_what_the_config_accepts() -> None:
    rows = table_rows(section("### Three frameworks"), "`--optimizer`")
    assert {names(row[0])[0] for row in rows} == {
        "sgd",
        "momentum",
        "sgd_momentum",
        "nesterov",
        "adam",
    }
    for row in rows:
        optimizer = names(row[0])[0]
        for framework, cell in zip(FRAMEWORKS, row[2:], strict=True):
            expected = cell != "—"
            got = accepted(
                framework=framework, optimizer=optimizer, dataset="ravine", model="linear"
            )
            assert got == expected, (framework, optimizer)


def test_model_table_is_what_the_config_accepts() -> None:
    rows = table_rows(section("### Three frameworks"), "`--model`")
    assert {names(row[0])[0] for row in rows} == {"linear", "logreg", "mlp", "cnn"}
    for row in rows:
        model, datasets = names(row[0])[0], names(row[1])
        for framework, cell in zip(FRAMEWORKS, row[2:], strict=True):
            for dataset in DATASETS:
                expected = cell == "✓" and dataset in datasets
                fields = {"framework": framework, "optimizer": "sgd"}
                got = accepted(**fields, model=model, dataset=dataset)
                assert got == expected, (framework, model, dataset)


@pytest.fixture(scope="module")
def server(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    database = tmp_path_factory.mktemp("readme") / "momentum.sqlite3"
    shutil.copyfile(sqlite_template, database)
    with live_server({"MOMENTUM_DATABASE_URL": f"sqlite:///{database}"}) as url:
        yield url


def test_every_example_is_listed() -> None:
    assert len(python_blocks(section("## Log from your own code"))) == len(EXAMPLES)


@pytest.mark.e2e
@pytest.mark.parametrize("index", range(len(EXAMPLES)), ids=[name for name, *_ in EXAMPLES])
def test_readme_example_logs_every_step(server: str, tmp_path: Path, index: int) -> None:
    name, steps, per_epoch_keys = EXAMPLES[index]
    script = tmp_path / f"{name}.py"
    script.write_text(python_blocks(section("## Log from your own code"))[index])
    env = {**os.environ, "MOMENTUM_URL": server, "MOMENTUM_SPOOL_DIR": str(tmp_path / "spool")}
    env.update({"OMP_NUM_THREADS": "1", "PYTHONPATH": str(README.parent)})
    env.pop("MOMENTUM_TOKEN", None)
    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    with httpx.Client(base_url=f"{server}/api/v1", timeout=30) as api:
        (run,) = [
            r for r in api.get("/runs", params={"q": name}).json()["items"] if r["name"] == name
        ]
        assert run["status"] == "succeeded"
        assert run["params"]["momentum"] == 0.9  # filterable, from each tool's own params
        loss = api.get(f"/runs/{run['id']}/metrics/loss").json()
        assert loss["steps"] == list(range(steps))
        assert loss["values"][-1] < 0.5 * loss["values"][0]  # it trained
        keys = {item["key"] for item in api.get(f"/runs/{run['id']}/metrics").json()["items"]}
        assert per_epoch_keys <= keys
