"""`momentum sweep`'s search options read into the request: --space, --objective,
--early-stop (unit: no service; the CLI run through a real server is in test_cli_sweeps)."""

from __future__ import annotations

from typing import Any

import click
import pytest
from click.testing import CliRunner

from momentum.cli import main
from momentum.cli_search import early_stop_body, parse_objective, parse_space, search_fields
from momentum.contract import SweepCreate
from momentum.contract.training import TrainingConfig

FIELDS = {name: info.annotation for name, info in TrainingConfig.model_fields.items()}


def test_the_issues_space_reads_as_the_contracts_dimensions() -> None:
    space = parse_space(
        ("momentum=0:0.99", "lr=1e-3:1:log", "optimizer=choice:sgd_momentum,nesterov",
         "steps=100:1000", "batch-size=16:256:int:log"),
        FIELDS,
    )  # fmt: skip
    assert space == {
        "momentum": {"type": "float", "low": 0.0, "high": 0.99, "log": False},
        "lr": {"type": "float", "low": 0.001, "high": 1.0, "log": True},
        "optimizer": {"type": "choice", "choices": ["sgd_momentum", "nesterov"]},
        "steps": {"type": "int", "low": 100, "high": 1000, "log": False},
        "batch_size": {"type": "int", "low": 16, "high": 256, "log": True},
    }
    body = {"name": "s", "strategy": "tpe", "space": space, "max_jobs": 30}
    SweepCreate.model_validate(body)  # the service's own model takes it as it is


def test_an_entry_points_params_are_floats_unless_int_and_choices_read_as_json() -> None:
    space = parse_space(("depth=2:8:int", "dropout=0:0.5", "arch=choice:mlp,cnn,3"), None)
    assert space["depth"] == {"type": "int", "low": 2, "high": 8, "log": False}
    assert space["dropout"]["type"] == "float"
    assert space["arch"]["choices"] == ["mlp", "cnn", 3]


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("momentun=0:1", "unknown field 'momentun'"),
        ("momentum", "is not NAME=LOW:HIGH"),
        ("momentum=0.9", "is not LOW:HIGH"),
        ("momentum=0.9:0.1", "LOW must be below HIGH"),
        ("momentum=0:x", "'x' is not a number"),
        ("momentum=0:inf", "finite"),
        ("lr=0:1:log", "above 0"),
        ("lr=1e-3:1:logg", "is not LOW:HIGH"),
        ("lr=1e-3:1:int", "float field"),
        ("steps=1.5:10", "whole bounds"),
        ("steps=1:10:float", "int field"),
        ("optimizer=0:1", "optimizer=choice:A,B"),
        ("optimizer=choice:sgd,rmsprop", "optimizer"),
        ("optimizer=choice:sgd,,adam", "between the commas"),
        ("optimizer=choice:sgd,sgd", "repeated"),
    ],
)
def test_a_bad_space_is_a_usage_error_naming_it(spec: str, says: str) -> None:
    with pytest.raises(click.BadParameter) as caught:
        parse_space((spec,), FIELDS)
    assert caught.value.param_hint == "--space"
    assert says in caught.value.format_message()


def test_the_same_name_twice_is_refused() -> None:
    with pytest.raises(click.BadParameter, match="given twice"):
        parse_space(("lr=0.1:1", "lr=0.2:1"), FIELDS)


@pytest.mark.parametrize(
    ("spec", "objective"),
    [
        ("val_loss", {"key": "val_loss", "mode": "min"}),
        ("val_accuracy", {"key": "val_accuracy", "mode": "max"}),
        ("val_loss:max", {"key": "val_loss", "mode": "max"}),
        ("train/loss:min:best", {"key": "train/loss", "mode": "min", "summary": "best"}),
        ("accuracy::final", {"key": "accuracy", "mode": "max", "summary": "final"}),
    ],
)
def test_objective_reads_key_mode_and_summary(spec: str, objective: dict[str, str]) -> None:
    assert parse_objective(spec) == objective


@pytest.mark.parametrize(
    "spec", ["val_loss:lowest", "val_loss:min:median", "a:b:c:d", "", "loss(x)"]
)
def test_a_bad_objective_is_a_usage_error(spec: str) -> None:
    with pytest.raises(click.BadParameter) as caught:
        parse_objective(spec)
    assert caught.value.param_hint == "--objective"


def test_early_stop_judges_the_objectives_key_and_takes_rung_settings() -> None:
    objective = {"key": "val_accuracy", "mode": "max"}
    assert early_stop_body("asha", objective, 100, 3) == {
        "rule": "asha", "key": "val_accuracy", "mode": "max", "min_step": 100,
        "reduction_factor": 3,
    }  # fmt: skip
    assert early_stop_body("median", None, None, None) == {"rule": "median"}
    assert early_stop_body(None, objective, None, None) is None
    with pytest.raises(click.UsageError, match="--min-step"):
        early_stop_body(None, None, 100, None)


def test_strategies_need_what_they_use() -> None:
    space = {"lr": {"type": "float", "low": 0.1, "high": 1.0, "log": False}}
    grid = {"seed": [0, 1]}
    assert search_fields("tpe", space, grid, 9, 2) == {
        "strategy": "tpe", "space": space, "max_jobs": 9, "grid": grid, "parallelism": 2,
    }  # fmt: skip
    assert search_fields("grid", {}, grid, None, None) == {"grid": grid}
    for strategy, args, says in [
        ("random", ({}, {}, 9), "needs --space"),
        ("tpe", (space, {}, None), "needs --max-jobs"),
        ("grid", (space, grid, None), "--space goes with"),
        ("grid", ({}, {}, None), "needs --grid"),
        ("grid", ({}, grid, 9), "--max-jobs goes with"),
    ]:
        with pytest.raises(click.UsageError, match=says):
            search_fields(strategy, *args, None)  # type: ignore[arg-type]


def invoke(*args: str) -> Any:
    # An unreachable URL: every case here must be refused before any request.
    env = {"MOMENTUM_URL": "http://127.0.0.1:9", "MOMENTUM_TOKEN": ""}
    return CliRunner().invoke(main, ["sweep", *args], env=env)


def test_usage_errors_exit_2_before_any_request() -> None:
    cases = [
        (["--strategy", "tpe", "--max-jobs", "5"], "needs --space"),
        (["--strategy", "tpe", "--space", "lr=1:0"], "LOW must be below HIGH"),
        (["--strategy", "bayes"], "'bayes' is not one of"),
        (["--grid", "momentum=0,0.9", "--reduction-factor", "3"], "go with --early-stop"),
        (["--strategy", "tpe", "--space", "lr=0.1:1", "--max-jobs", "0"], "--max-jobs"),
        (["--entry-point", "x", "--space", "a=0:1", "--strategy", "random", "--lr", "0.1"],
         "training options"),
    ]  # fmt: skip
    for args, says in cases:
        result = invoke(*args)
        assert result.exit_code == 2, (args, result.output)
        assert says in result.output, (args, result.output)
