"""`momentum train` and `momentum sync`: option handling in-process, then against a live server."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from momentum.cli import main
from momentum.cli_train import build_config, training_options
from momentum.client import MomentumClient
from momentum.contract.training import TrainingConfig
from tests.fake_service import FakeService, make_run
from tests.support import live_server

RUN_ID = re.compile(r"^run id: (\d+)$", re.MULTILINE)


@click.command()
@training_options
def echo_config(**fields: Any) -> None:
    click.echo(build_config(fields).model_dump_json())


def test_every_training_config_field_has_an_option() -> None:
    result = CliRunner().invoke(echo_config, ["--help"])
    for name in TrainingConfig.model_fields:
        assert f"--{name.replace('_', '-')}" in result.output, name


def test_options_become_a_training_config_with_defaults_for_the_rest() -> None:
    args = ["--optimizer", "nesterov", "--momentum", "0.5", "--dataset", "spirals"]
    args += ["--model", "logreg", "--dataset-size", "50", "--no-stop-on-divergence"]
    result = CliRunner().invoke(echo_config, args)
    assert result.exit_code == 0, result.output
    expected = TrainingConfig(
        optimizer="nesterov",
        momentum=0.5,
        dataset="spirals",
        model="logreg",
        dataset_size=50,
        stop_on_divergence=False,
    )
    assert TrainingConfig(**json.loads(result.output)) == expected


@pytest.mark.parametrize(
    ("args", "model"),
    [([], "mlp"), (["--dataset", "spirals"], "mlp"), (["--dataset", "ravine"], "linear")],
)
def test_the_model_defaults_to_the_one_the_dataset_needs(args: list[str], model: str) -> None:
    result = CliRunner().invoke(echo_config, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["model"] == model


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--momentum", "1.5"], "--momentum: Input should be less than 1"),
        (["--model", "cnn", "--dataset", "ravine"], "model 'cnn' needs dataset 'digits'"),
        (["--model", "mlp", "--dataset", "ravine"], "dataset 'ravine' (regression) needs"),
        (["--optimizer", "rmsprop"], "'rmsprop' is not one of"),
        (["--tag", "no-equals-sign"], "is not KEY=VALUE"),
    ],
)
def test_invalid_options_are_usage_errors_that_say_why(args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["train", "--steps", "5", *args])
    assert result.exit_code == 2 and message in result.output


@pytest.fixture(scope="module")
def server_url(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One live server on a migrated SQLite copy, shared by this module's tests."""
    database = tmp_path_factory.mktemp("train-cli") / "momentum.sqlite3"
    shutil.copyfile(sqlite_template, database)
    with live_server({"MOMENTUM_DATABASE_URL": f"sqlite:///{database}"}) as url:
        yield url


@pytest.fixture(autouse=True)
def private_spool_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever a run here would spool goes to the test's directory, not ~/.cache."""
    monkeypatch.setenv("MOMENTUM_SPOOL_DIR", str(tmp_path / "spool"))


@pytest.mark.e2e
def test_train_prints_the_id_of_a_run_holding_its_points(server_url: str) -> None:
    argv = [sys.executable, "-m", "momentum.cli", "train", "--url", server_url, "--threads", "1"]
    # No --model: ravine's default, linear (an mlp would be refused).
    argv += ["--dataset", "ravine", "--steps", "120", "--eval-every", "40"]
    argv += ["--name", "cli-run", "--tag", "source=test", "--seed", "4", "--device", "cpu"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    match = RUN_ID.search(done.stdout)
    assert match, done.stdout
    with MomentumClient(server_url) as client:
        run = client.get_run(int(match.group(1)))
        assert (run.name, run.status, run.diverged) == ("cli-run", "succeeded", False)
        assert (run.tags, run.params["seed"], run.momentum) == ({"source": "test"}, 4, 0.9)
        assert run.params["model"] == "linear"
        counts = {s.key: s.count for s in client.list_series(run.id).items}
    assert counts["loss"] == 120 and counts["val_loss"] == 4  # steps 0, 40, 80 and the last


@pytest.mark.e2e
def test_a_diverging_run_succeeds_and_is_flagged_diverged(server_url: str) -> None:
    args = ["train", "--url", server_url, "--dataset", "ravine", "--model", "linear"]
    args += ["--lr", "50", "--steps", "200", "--no-progress", "--device", "cpu"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    match = RUN_ID.search(result.output)
    assert match and "diverged" in result.output
    with MomentumClient(server_url) as client:
        run = client.get_run(int(match.group(1)))
        loss = client.get_history(run.id, "loss")
    assert (run.status, run.diverged) == ("succeeded", True)
    assert loss.values[-1] in ("NaN", "Infinity") and len(loss.steps) < 200


@pytest.mark.e2e
def test_sync_replays_a_spool_file_into_the_service(server_url: str, tmp_path: Path) -> None:
    with make_run(FakeService(down=True), tmp_path, name="offline", close_timeout=0.1) as run:
        for step in range(300):
            run.log(step, loss=1 / (step + 1))
    assert run.unsent_path is not None
    result = CliRunner().invoke(main, ["sync", str(run.unsent_path), "--url", server_url])
    assert result.exit_code == 0, result.output
    run_id = int(re.search(r"run id (\d+): 300 points, 1 updates", result.output).group(1))  # type: ignore[union-attr]
    with MomentumClient(server_url) as client:
        stored = client.get_run(run_id)
        assert (stored.name, stored.status) == ("offline", "succeeded")
        assert client.get_history(run_id, "loss").steps == list(range(300))
    assert not run.unsent_path.exists()


@pytest.mark.e2e
@pytest.mark.parametrize(("framework", "grad_norm"), [("numpy", 60), ("keras", 0)])
def test_train_runs_the_framework_asked_for(
    server_url: str, framework: str, grad_norm: int
) -> None:
    args = ["train", "--url", server_url, "--framework", framework, "--dataset", "ravine"]
    args += ["--model", "linear", "--steps", "60", "--eval-every", "20", "--no-progress"]
    result = CliRunner().invoke(main, [*args, "--device", "cpu", "--name", f"cli-{framework}"])
    assert result.exit_code == 0, result.output
    match = RUN_ID.search(result.output)
    assert match, result.output
    with MomentumClient(server_url) as client:
        run = client.get_run(int(match.group(1)))
        counts = {s.key: s.count for s in client.list_series(run.id).items}
    assert run.params["framework"] == framework and run.status == "succeeded"
    assert counts["loss"] == 60 and counts["val_loss"] == 4
    assert counts.get("grad_norm", 0) == grad_norm  # fit does not expose Keras's gradients
