"""The importers' parts without a service: reading event files (both scalar encodings,
hparams), run names, metric keys, the MLflow values sent again, and the message when
the `import` extra is missing."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from momentum.cli import main
from momentum.importers import EXTRA_HINT, MissingExtra, metric_key, require
from momentum.importers.mlflow import _metrics_to_send
from momentum.importers.tensorboard import external_id, run_name
from momentum.importers.tensorboard_reader import read_run_directory, run_directories


def test_event_files_read_with_tensorboards_reader(tmp_path: Path) -> None:
    from torch.utils.tensorboard import SummaryWriter

    logdir = tmp_path / "mlp-mu0.9"
    with SummaryWriter(log_dir=str(logdir)) as writer:
        for step in range(3):
            writer.add_scalar("loss", 1.0 / (step + 1), step, walltime=100.0 + step)
            writer.add_scalar("tensor (new)", 2.0 * step, step, walltime=100.0, new_style=True)
        writer.add_hparams({"lr": 0.1, "batch": 32, "opt": "sgd", "nesterov": True}, {"m": 1.0})
    (top, hparams_run) = run_directories(logdir)
    assert top == logdir and run_name(logdir, top) == "mlp-mu0.9"
    assert run_name(logdir, hparams_run) == hparams_run.name
    read = read_run_directory(top)
    assert read.series == {
        "loss": [(0, 1.0, 100.0), (1, 0.5, 101.0), (2, pytest.approx(1 / 3), 102.0)],
        "tensor _new_": [(0, 0.0, 100.0), (1, 2.0, 100.0), (2, 4.0, 100.0)],
    }
    hparams = read_run_directory(hparams_run)
    assert hparams.params == {"lr": 0.1, "batch": 32, "opt": "sgd", "nesterov": True}
    assert [(step, value) for step, value, _ in hparams.series["m"]] == [(0, 1.0)]


def test_a_directory_is_one_run_per_project() -> None:
    assert external_id("a", Path("/x/run")) == external_id("a", Path("/x/run"))
    assert external_id("a", Path("/x/run")) != external_id("b", Path("/x/run"))
    assert metric_key("acc@1 (val)") == "acc_1 _val_" and len(metric_key("k" * 300)) == 250


def metric(step: int, value: float, timestamp: int) -> SimpleNamespace:
    return SimpleNamespace(step=step, value=value, timestamp=timestamp)


def test_mlflow_values_after_those_held_in_logging_order() -> None:
    history = [metric(1, 0.5, 20), metric(0, 1.0, 10), metric(1, 0.5, 20), metric(1, 9.0, 30)]
    sent = _metrics_to_send("loss", history, 0)
    assert [(m["step"], m["value"], m["timestamp"]) for m in sent] == [
        (0, 1.0, 10),
        (1, 0.5, 20),  # its resend (same value and timestamp) is not sent again
        (1, 9.0, 30),  # another value at step 1: the service's rule moves it
    ]
    assert _metrics_to_send("loss", history, 3) == []
    assert _metrics_to_send("loss", [metric(0, float("nan"), 1)], 0)[0]["value"] == "NaN"


def test_a_missing_reader_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(MissingExtra, match="momentum-monitor\\[import\\]"):
        require("no_such_reader_module", "TensorBoard")

    def missing() -> None:
        raise MissingExtra(f"importing from TensorBoard needs `tensorboard`: {EXTRA_HINT}")

    monkeypatch.setattr("momentum.importers.tensorboard_reader.require_reader", missing)
    result = CliRunner().invoke(main, ["import", "tensorboard", "."])
    assert result.exit_code == 1
    assert "pip install 'momentum-monitor[import]'" in result.output


def test_a_logdir_without_event_files_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["import", "tensorboard", str(tmp_path)])
    assert result.exit_code == 1 and "no event files" in result.output
