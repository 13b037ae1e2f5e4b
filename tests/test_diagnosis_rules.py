"""The diagnosis rules on synthetic curves whose answers are known (service/analysis/)."""

from __future__ import annotations

import numpy as np
import pytest

from service.analysis import detectors
from service.analysis.advice import RAVINE_MAX_CURVATURE, Hyper, theoretical_period
from service.analysis.diagnosis import Series, diagnose, validation_key
from tests import diagnosis_curves as curves
from tests.diagnosis_curves import PARAMS, STEPS, VAL_STEPS

_noisy = curves.noisy


def _kinds(values: np.ndarray, steps: np.ndarray = STEPS, **kwargs: object) -> list[str]:
    findings = diagnose("loss", Series(steps, values), PARAMS, **kwargs)  # type: ignore[arg-type]
    return [f.kind for f in findings]


def test_clean_noisy_decreasing_curve_has_no_finding() -> None:
    for seed in range(5):
        assert _kinds(_noisy(2.0 * np.exp(-STEPS / 700) + 0.05, seed=seed)) == []


def test_steady_geometric_decay_is_no_plateau() -> None:
    """10 % every 300 steps is still learning, as a log axis shows."""
    assert _kinds(_noisy(3.0 * 0.9 ** (STEPS / 300))) == []
    assert _kinds(3.0 * 0.9 ** (STEPS / 300)) == []


def test_every_case_gives_its_kinds() -> None:
    for case in curves.cases():
        validation = None if case.val_loss is None else Series(VAL_STEPS, case.val_loss)
        findings = diagnose("loss", Series(STEPS, case.loss), PARAMS, validation)
        assert [f.kind for f in findings] == case.expected, case.name


def test_damped_cosine_on_decaying_trend_gives_its_period() -> None:
    period = curves.RINGING_PERIOD
    findings = diagnose("loss", Series(STEPS, curves.ringing()), PARAMS)
    assert [f.kind for f in findings] == ["oscillation"]
    (found,) = findings
    assert found.detail["period"] == pytest.approx(period, rel=0.05)
    assert found.from_step == 0 and found.to_step >= 1500
    assert found.message.startswith(
        f"loss oscillates with a period of about {found.detail['period']:.0f} steps from step 0"
    )
    assert "μ=0.99" in found.advice and "lr=0.05" in found.advice and "μ=0.9" in found.advice
    assert "effective step lr/(1−μ) is 5" in found.advice


def test_oscillation_starting_late_is_found_from_there() -> None:
    trend = 2.0 * np.exp(-STEPS / 800) + 0.1
    ringing = np.where(STEPS >= 1000, 0.2 * np.sin(2 * np.pi * STEPS / 25), 0.0)
    (found,) = diagnose("loss", Series(STEPS, _noisy(trend + ringing)), PARAMS)
    assert found.kind == "oscillation"
    assert 750 <= found.from_step <= 1000
    assert found.detail["period"] == pytest.approx(25, rel=0.05)


def test_curve_that_flattens_at_a_known_step_is_a_plateau_from_there() -> None:
    knee = curves.PLATEAU_STEP
    findings = diagnose("loss", Series(STEPS, curves.flattening()), {"momentum": 0.0, "lr": 0.1})
    assert [f.kind for f in findings] == ["plateau"]
    (found,) = findings
    assert knee - 100 <= found.from_step <= knee + 100
    assert found.to_step == STEPS[-1]
    assert found.detail["relative_improvement"] < detectors.PLATEAU_MAX_IMPROVEMENT
    assert "μ=0.9" in found.advice and "10× larger effective step" in found.advice


def test_one_spike() -> None:
    values = curves.spiking()
    (found,) = diagnose("loss", Series(STEPS, values), PARAMS)
    assert (found.kind, found.from_step, found.to_step) == ("spike", 1234, 1234)
    assert curves.SPIKE_STEP == 1234
    assert found.detail["step"] == 1234
    assert found.detail["value"] == pytest.approx(values[1234])
    assert found.detail["z"] >= detectors.SPIKE_MIN_Z


def test_non_finite_value_is_divergence() -> None:
    (found,) = diagnose("loss", Series(STEPS, curves.exploding()), PARAMS)
    assert (found.kind, found.from_step, found.detail["step"]) == ("divergence", 1500, 1500)
    assert "halve lr" in found.advice


def test_sustained_blow_up_is_divergence() -> None:
    values = np.where(STEPS < 1200, 2.0 * np.exp(-STEPS / 300), 0.02 * 1.05 ** (STEPS - 1200))
    kinds = [(f.kind, f.from_step) for f in diagnose("loss", Series(STEPS, values), PARAMS)]
    assert len(kinds) == 1 and kinds[0][0] == "divergence"
    assert 1200 < kinds[0][1] < 1300


def test_validation_curve_turning_up_is_overfitting() -> None:
    train, turn = curves.overfitting_train(), curves.OVERFIT_STEP
    findings = diagnose(
        "loss", Series(STEPS, train), PARAMS, Series(VAL_STEPS, curves.overfitting_val())
    )
    assert [f.kind for f in findings] == ["overfitting"]
    (found,) = findings
    assert turn - 150 <= found.from_step <= turn + 150
    assert found.to_step == VAL_STEPS[-1]
    assert found.detail["val_key"] == "val_loss"
    assert "val_loss rises from step" in found.message


def test_falling_validation_curve_is_no_overfitting() -> None:
    val = _noisy(2.0 * np.exp(-VAL_STEPS / 300) + 0.2)
    train = Series(STEPS, curves.overfitting_train())
    assert diagnose("loss", train, PARAMS, Series(VAL_STEPS, val)) == []


def test_validation_key_prefixes_the_name() -> None:
    assert validation_key("loss") == "val_loss"
    assert validation_key("train/loss") == "train/val_loss"


def test_theoretical_period_on_ravine() -> None:
    """cos θ = (1 + μ − lr·λ) / (2√μ); the loss rings with period π/θ."""
    hyper = Hyper.of({**PARAMS, "dataset": "ravine"})
    expected = np.pi / np.arccos((1 + 0.99 - 0.05) / (2 * np.sqrt(0.99)))
    assert theoretical_period(hyper) == pytest.approx(expected)
    assert theoretical_period(Hyper.of(PARAMS)) is None  # not ravine: curvature unknown
    assert theoretical_period(Hyper.of({**PARAMS, "dataset": "ravine", "momentum": 0})) is None


def test_ravine_curvature_matches_the_trainer() -> None:
    from trainer.datasets import RAVINE_MAX_CURVATURE as TRAINER_CURVATURE

    assert RAVINE_MAX_CURVATURE == TRAINER_CURVATURE


def test_accuracy_is_read_the_other_way_up() -> None:
    rising = 0.3 + 0.6 * STEPS / STEPS[-1]
    assert diagnose("accuracy", Series(STEPS, _noisy(rising)), PARAMS) == []
    flat_after_500 = 0.3 + 0.6 * np.minimum(STEPS, 500) / 500
    (found,) = diagnose("accuracy", Series(STEPS, _noisy(flat_after_500)), PARAMS)
    assert found.kind == "plateau" and 400 <= found.from_step <= 600
