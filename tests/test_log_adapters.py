"""`momentum.tensorboard.SummaryWriter` and `momentum.wandb`: scripts written for
TensorBoard and W&B, with only their import changed, log to the real service.

The TensorBoard script runs twice, once with torch's real writer (its event files then
brought in with `momentum import tensorboard`) and once with ours; the series must be
equal point for point, and a re-import changes nothing until the files grow. The W&B
script exercises W&B's documented step rules (no `step` → the next step; `commit=False`
accumulates; a `step` ahead commits what is pending; a `step` behind is
dropped), config → params, summary, finish(exit_code).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from momentum.adapters import param, scalar
from momentum.cli import main
from momentum.tensorboard import SummaryWriter, run_name
from tests.support import live_server

ROOT = Path(__file__).resolve().parent.parent
TORCH_IMPORT = "from torch.utils.tensorboard import SummaryWriter"
OUR_IMPORT = "from momentum.tensorboard import SummaryWriter"
TORCH_KEYS = {"train/loss", "train/lr", "train/tensor", "weights/norm", "weights/bias", "final"}

TORCH_LOOP = """
import numpy as np
import torch
{import_line}

torch.manual_seed(0)
x, y = torch.randn(64, 4), torch.randn(64, 1)
model = torch.nn.Linear(4, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
with SummaryWriter(log_dir={log_dir!r}) as writer:
    for step in range(12):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
        writer.add_scalar("train/loss", loss, step)  # a tensor
        writer.add_scalar("train/lr", np.float32(0.05 * 0.9**step), global_step=step)
        writer.add_scalar("train/tensor", loss, step, new_style=True)  # a TF2-style tensor
        weights = {{"norm": model.weight.norm().item(), "bias": model.bias.item()}}
        writer.add_scalars("weights", weights, step)
        writer.add_histogram("weights/hist", model.weight, step)  # not carried: warns once
    writer.add_scalar("final", 1.5)  # no step: TensorBoard writes step 0
    writer.add_hparams({{"lr": 0.05, "momentum": 0.9}}, {{"hparam/final_loss": loss.item()}})
"""

WANDB_SCRIPT = """
import torch
import momentum.wandb as wandb

config = {"lr": 0.05, "momentum": 0.9}
run = wandb.init(project="wandb-style", name="wb", config=config, id="wb-1", tags=["base"])
wandb.config.batch_size = 32
wandb.config["seed"] = 7
wandb.log({"loss": 1.0})                       # step 0
wandb.log({"loss": torch.tensor(0.9)})         # step 1
wandb.log({"acc": 0.5}, commit=False)          # step 2, pending
wandb.log({"loss": 0.8})                       # step 2: acc and loss together
wandb.log({"loss": 0.7}, step=10)              # ahead: collected at 10
wandb.log({"acc": 0.6}, step=10)               # same step: added
wandb.log({"loss": 99.0}, step=4)              # behind: dropped with a warning
wandb.log({"eval": {"loss": 0.75}})            # commits step 10 (nested key eval.loss)
wandb.log({"loss": 0.6, "image": wandb.Image(None)})  # step 11; the image is dropped
wandb.define_metric("loss", summary="min")
wandb.watch(torch.nn.Linear(1, 1))
wandb.summary["best_loss"] = 0.6
run.summary["note"] = "ok"
assert run.step == 12 and run.config.lr == 0.05 and wandb.config["batch_size"] == 32
wandb.finish(exit_code={exit_code})
"""

WANDB_RESUMED = """
import momentum.wandb as wandb

run = wandb.init(project="wandb-style", id="wb-1", resume="allow")
assert run.step == 12, run.step
wandb.log({"loss": 0.5})
"""  # no finish: W&B finishes a run the script left open, as succeeded


def run_script(source: str, directory: Path, server: str) -> subprocess.CompletedProcess[str]:
    script = directory / "script.py"
    script.write_text(source)
    env = {**os.environ, "MOMENTUM_URL": server, "MOMENTUM_SPOOL_DIR": str(directory / "spool")}
    env.update({"OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)})
    env.pop("MOMENTUM_TOKEN", None)
    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr
    return done


def the_run(api: httpx.Client, name: str, project: str | None = None) -> dict[str, Any]:
    params = {"q": name} if project is None else {"q": name, "project": project}
    (run,) = [r for r in api.get("/runs", params=params).json()["items"] if r["name"] == name]
    return dict(run)


def service_series(api: httpx.Client, run_id: int) -> dict[str, list[tuple[int, float, float]]]:
    keys = [item["key"] for item in api.get(f"/runs/{run_id}/metrics").json()["items"]]
    series = {}
    for key in keys:
        history = api.get(f"/runs/{run_id}/metrics/{key}").json()
        points = zip(history["steps"], history["values"], history["wall_times"], strict=True)
        series[key] = list(points)
    return series


def import_tensorboard(server: str, logdir: Path, project: str) -> str:
    result = CliRunner().invoke(
        main, ["import", "tensorboard", str(logdir), "--project", project, "--url", server]
    )
    assert result.exit_code == 0, result.output
    return result.output


def imported_series(
    api: httpx.Client, project: str
) -> tuple[dict[str, list[tuple[int, float, float]]], dict[str, Any]]:
    """What `momentum import tensorboard` made of torch's files, as our writer names it:
    torch's `add_scalars` writes each `tag` to a directory `<log_dir>/<main_tag>_<tag>`
    under the tag `main_tag` (the key `main_tag/tag`); `add_hparams` writes its own run
    directory (named by the time), with the hparams and the metric. Also its params."""
    runs = api.get("/runs", params={"project": project, "limit": 100}).json()["items"]
    series, params = {}, {}
    for run in runs:
        relative = run["name"].removeprefix("torch-loop").lstrip("/")
        for key, points in service_series(api, run["id"]).items():
            if relative.startswith(f"{key}_"):
                key = f"{key}/{relative[len(key) + 1 :]}"
            series[key] = points
        params.update(run["params"])
    return series, params


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> Iterator[str]:
    database = tmp_path / "momentum.sqlite3"
    shutil.copyfile(sqlite_template, database)
    with live_server({"MOMENTUM_DATABASE_URL": f"sqlite:///{database}"}, timeout=120) as url:
        yield url


@pytest.mark.e2e
def test_a_torch_loop_logs_what_tensorboard_writes(sqlite_url: str, tmp_path: Path) -> None:
    real, ours = tmp_path / "real", tmp_path / "ours"
    real.mkdir(), ours.mkdir()
    log_dir = "runs/torch-loop"
    for directory, line in ((real, TORCH_IMPORT), (ours, OUR_IMPORT)):
        source = TORCH_LOOP.format(import_line=line, log_dir=str(directory / log_dir))
        done = run_script(source, directory, sqlite_url)
    assert "add_histogram does nothing" in done.stderr
    output = import_tensorboard(sqlite_url, real / "runs", "imported")
    assert "4 runs in project 'imported' (4 new), 62 points imported" in output
    with httpx.Client(base_url=f"{sqlite_url}/api/v1", timeout=30) as api:
        run = the_run(api, "torch-loop", "default")
        got = service_series(api, run["id"])
        expected, params = imported_series(api, "imported")
        assert "0 points imported" in import_tensorboard(sqlite_url, real / "runs", "imported")
        assert imported_series(api, "imported") == (expected, params)  # nothing changed
        grow_event_files(real / log_dir)
        assert "2 points imported" in import_tensorboard(sqlite_url, real / "runs", "imported")
        grown, _ = imported_series(api, "imported")
    assert run["status"] == "succeeded"
    assert run["params"] == params == {"lr": 0.05, "momentum": 0.9} and run["momentum"] == 0.9
    assert set(got) == set(expected) == {*TORCH_KEYS, "hparam/final_loss"}
    for key, points in expected.items():
        if key != "hparam/final_loss":  # torch writes it at step 0, in its own run
            assert [step for step, *_ in got[key]] == [step for step, *_ in points], key
        for (_, value, wall), (_, real_value, real_wall) in zip(got[key], points, strict=True):
            assert value == pytest.approx(real_value, rel=1e-6), key  # event files: float32
            assert abs(wall - real_wall) < 120, key  # a wall time of this run, not a step
    assert got["hparam/final_loss"][0][0] == 11  # ours: the last step written
    assert grown == {**expected, "train/loss": grown["train/loss"]}
    assert grown["train/loss"][:12] == expected["train/loss"]
    assert [(step, value) for step, value, _ in grown["train/loss"][12:]] == [(12, 0.5), (13, 0.25)]


def grow_event_files(log_dir: Path) -> None:
    """Torch's writer run again on the directory: a second event file, two more steps."""
    from torch.utils.tensorboard import SummaryWriter as TorchWriter

    with TorchWriter(log_dir=str(log_dir)) as writer:
        writer.add_scalar("train/loss", 0.5, 12)
        writer.add_scalar("train/loss", 0.25, 13)


@pytest.mark.e2e
def test_a_wandb_script_logs_by_wandbs_step_rules(database_url: str, tmp_path: Path) -> None:
    exit_code = 3 if database_url.startswith("sqlite") else 0  # both ends, one run each
    with live_server({"MOMENTUM_DATABASE_URL": database_url}, timeout=120) as url:
        done = run_script(WANDB_SCRIPT.replace("{exit_code}", str(exit_code)), tmp_path, url)
        with httpx.Client(base_url=f"{url}/api/v1", timeout=30) as api:
            first = the_run(api, "wb")
            run_script(WANDB_RESUMED, tmp_path, url)
            run = the_run(api, "wb")
            got = {
                key: [(s, v) for s, v, _ in points]
                for key, points in service_series(api, run["id"]).items()
            }
            params = {"param": ["momentum:0.9", "batch_size:32"], "project": "wandb-style"}
            filtered = api.get("/runs", params=params).json()["items"]
    assert "less than the current step" in done.stderr
    assert first["status"] == ("failed" if exit_code else "succeeded")
    assert run["status"] == "succeeded"  # the resumed script ended cleanly
    assert run["params"] == {"lr": 0.05, "momentum": 0.9, "batch_size": 32, "seed": 7}
    assert [r["id"] for r in filtered] == [run["id"]]
    assert got == {
        "loss": [(0, 1.0), (1, pytest.approx(0.9)), (2, 0.8), (10, 0.7), (11, 0.6), (12, 0.5)],
        "acc": [(2, 0.5), (10, 0.6)],
        "eval.loss": [(10, 0.75)],
        "best_loss": [(11, 0.6)],  # a summary number never logged: a point at the last step
    }
    assert first["tags"] == {"base": "", "summary.best_loss": "0.6", "summary.note": "ok"}


def test_run_names_follow_tensorboard() -> None:
    assert run_name("runs/mlp-mu0.9") == "mlp-mu0.9"
    assert run_name("runs/sweep/mu0.9/") == "sweep/mu0.9"
    assert run_name("logs/exp") == "logs/exp"
    assert run_name("/tmp/tb/exp") == "exp"


def test_tensors_and_numpy_become_numbers() -> None:
    import numpy as np
    import torch

    assert scalar(torch.tensor(2.5)) == 2.5 and type(scalar(torch.tensor(2.5))) is float
    assert scalar(np.int64(3)) == 3 and type(scalar(np.float32(0.5))) is float
    assert scalar(torch.ones(3)) is not None and not isinstance(scalar(torch.ones(3)), float)
    assert param({"lr": np.float64(0.1), "dims": (2, torch.tensor(3))}) == {
        "lr": 0.1,
        "dims": [2, 3],
    }


def test_unsupported_methods_exist_and_warn_once(tmp_path: Path) -> None:
    from momentum.client.run import Run

    run = Run(url="http://127.0.0.1:9", spool_dir=tmp_path)  # never started: nothing sent
    writer = SummaryWriter("runs/x", run=run)
    with pytest.warns(UserWarning, match="add_image does nothing"):
        writer.add_image("img", object(), 0)
    for name in ("add_histogram", "add_text", "add_graph", "add_figure", "add_embedding"):
        assert callable(getattr(writer, name))
    assert writer.get_logdir() == "runs/x"
