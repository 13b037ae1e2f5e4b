"""Adaptive sweeps' pure parts: rung values, ASHA and median verdicts checked against
Optuna's own pruners on the same values, and the sampler rebuilt from history."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import optuna
import pytest

from momentum.contract import EarlyStop, SweepCreate
from service.search import checks, rules
from service.search.history import PastTrial
from service.search.sampler import Sampler

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_rungs_are_min_step_times_powers_of_the_reduction_factor_below_the_last_step() -> None:
    rule = EarlyStop(rule="asha", min_step=10, reduction_factor=3)
    assert rule.rungs(1000) == [10, 30, 90, 270, 810]
    assert rule.rungs(90) == [10, 30]
    assert rule.rungs(5) == []


def test_rung_value_summarizes_only_the_points_up_to_the_rung() -> None:
    steps = np.arange(0, 50)
    values = np.linspace(2.0, 1.0, 50)
    values[31] = 100.0  # after the rung: never seen
    upto = values[steps <= 30]
    # tail_mean: the last 10 % of the logged step range 0..30, i.e. steps >= 27
    assert rules.rung_value(steps, values, 30, "tail_mean", "min") == pytest.approx(
        float(np.mean(upto[27:]))
    )
    assert rules.rung_value(steps, values, 30, "final", "min") == pytest.approx(upto[-1])
    assert rules.rung_value(steps, values, 30, "best", "max") == pytest.approx(upto[0])
    assert rules.rung_value(steps, values, -1, "final", "min") is None
    assert math.isnan(rules.rung_value(steps, np.full(50, np.nan), 30, "final", "min") or 0)


def _optuna_sha_verdicts(values: list[float], factor: int, direction: str) -> list[bool]:
    """Optuna's SuccessiveHalvingPruner, one trial at a time reporting at step 1."""
    pruner = optuna.pruners.SuccessiveHalvingPruner(
        min_resource=1, reduction_factor=factor, min_early_stopping_rate=0
    )
    study = optuna.create_study(direction=direction, pruner=pruner)
    out = []
    for value in values:
        trial = study.ask()
        trial.report(value, 1)
        out.append(trial.should_prune())
        study.tell(trial, value)
    return out


@pytest.mark.parametrize(("factor", "mode"), [(2, "min"), (3, "min"), (3, "max"), (4, "max")])
def test_asha_agrees_with_optunas_successive_halving_pruner(factor: int, mode: str) -> None:
    generator = random.Random(factor)
    values = [round(generator.uniform(0, 1), 3) for _ in range(30)]
    expected = _optuna_sha_verdicts(values, factor, "minimize" if mode == "min" else "maximize")
    ours = [
        rules.asha("loss", value, values[:index], 1, factor, mode).stop  # type: ignore[arg-type]
        for index, value in enumerate(values)
    ]
    assert ours == expected
    assert any(ours) and not all(ours)


def test_asha_verdict_names_its_numbers() -> None:
    others = [0.41, 0.3, 0.5, 0.9, 0.2, 0.7, 0.6, 0.95]
    verdict = rules.asha("val_loss", 0.84, others, 300, 3, "min")
    # 9 runs reached the rung: the best 3 go on; the cutoff is the third best, 0.41
    assert verdict.stop and verdict.cutoff == 0.41 and verdict.reached == 9
    assert verdict.reason == (
        "stopped at step 300: val_loss 0.84 is not in the top 1/3 at rung 300 "
        "(cutoff 0.41, 9 runs reached it)"
    )
    assert not rules.asha("val_loss", 0.3, others, 300, 3, "min").stop
    assert rules.asha("val_loss", math.nan, others, 300, 3, "min").stop  # diverged: worst


def test_median_agrees_with_optunas_median_pruner() -> None:
    generator = random.Random(7)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=0, n_warmup_steps=0)
    study = optuna.create_study(direction="minimize", pruner=pruner)
    finished: list[dict[int, float]] = []
    verdicts = []
    for _ in range(25):
        curve = {step: generator.uniform(0, 1) for step in (1, 2, 3)}
        trial = study.ask()
        for step, value in curve.items():
            trial.report(value, step)
            best = min(v for s, v in curve.items() if s <= step)
            others = [done[step] for done in finished]
            ours = rules.median("loss", best, others, step, "min").stop
            verdicts.append(ours)
            assert ours == trial.should_prune(), (step, best, others)
        study.tell(trial, curve[3])
        finished.append(curve)
    assert any(verdicts) and not all(verdicts)


def test_median_reason_and_its_first_run() -> None:
    assert not rules.median("loss", 5.0, [], 10, "min").stop
    verdict = rules.median("accuracy", 0.5, [0.6, 0.8, 0.7], 10, "max")
    assert verdict.stop and verdict.cutoff == pytest.approx(0.7)
    assert verdict.reason == (
        "stopped at step 10: accuracy best so far 0.5 is worse than the median 0.7 of the "
        "3 other runs at step 10"
    )


SPACE = {
    "momentum": {"type": "float", "low": 0.0, "high": 0.99},
    "lr": {"type": "float", "low": 1e-3, "high": 1.0, "log": True},
    "batch_size": {"type": "int", "low": 8, "high": 64},
    "optimizer": {"type": "choice", "choices": ["momentum", "nesterov"]},
}


def _history(count: int) -> list[PastTrial]:
    sampler = Sampler("random", SPACE, "min", 1, [], 20)
    out = []
    for _ in range(count):
        number, point = sampler.ask()
        out.append(PastTrial(number, point, "complete", value=point["lr"] * 10))
    return out


@pytest.mark.parametrize("strategy", ["random", "tpe"])
def test_a_rebuilt_sampler_asks_what_the_first_would_have(strategy: str) -> None:
    history = _history(12)
    first = Sampler(strategy, SPACE, "min", 5, history, 30)
    again = Sampler(strategy, SPACE, "min", 5, history, 30)
    asked = [first.ask() for _ in range(3)]
    assert [again.ask() for _ in range(3)] == asked
    assert [number for number, _ in asked] == [12, 13, 14]
    for _, point in asked:
        assert 0.0 <= point["momentum"] <= 0.99 and 1e-3 <= point["lr"] <= 1.0
        assert isinstance(point["batch_size"], int) and 8 <= point["batch_size"] <= 64
        assert point["optimizer"] in ("momentum", "nesterov")
    other_seed = Sampler(strategy, SPACE, "min", 6, history, 30)
    assert other_seed.ask() != asked[0]


def test_tpe_leans_toward_the_good_region_of_its_history() -> None:
    history = _history(20)
    sampler = Sampler("tpe", SPACE, "min", 3, history, 30)
    asked = [sampler.ask()[1]["lr"] for _ in range(10)]
    # the objective is 10 * lr: TPE proposes lower lr than the log-uniform median (0.03)
    assert float(np.median(asked)) < 0.03


def test_a_failed_point_is_told_back_and_kept_in_the_history() -> None:
    sampler = Sampler("random", SPACE, "min", 1, [], 10)
    number, point = sampler.ask()
    sampler.tell_failed(number)
    assert sampler.study.trials[0].state == optuna.trial.TrialState.FAIL
    rebuilt = Sampler("random", SPACE, "min", 1, [PastTrial(number, point, "failed")], 10)
    assert rebuilt.ask()[0] == 1


def test_the_readmes_example_request_is_valid() -> None:
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    block = text.split("POST /api/v1/sweeps\n", 1)[1].split("```", 1)[0]
    body = SweepCreate.model_validate(json.loads(block))
    assert body.strategy == "tpe" and body.early_stop is not None
    assert checks.space_problems(body, None) == [] and checks.key_problems(body, None) == []
    assert checks.budget_problems(body, 2, 256) == []
