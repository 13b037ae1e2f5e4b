"""Read one curve (and its `val_` twin) for momentum's failure modes, worded with advice.

Pure NumPy/SciPy over the whole stored series: no database, no sampling. The rules and
their thresholds are in service/analysis/detectors.py; the advice in advice.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from momentum.contract import Finding
from service.analysis import detectors
from service.analysis.advice import Hyper, advise, theoretical_period
from service.analysis.curve import Curve
from service.analysis.detectors import Found

VALIDATION_PREFIX = "val_"
# The order findings are listed in when they start at the same step.
KIND_ORDER = ("divergence", "oscillation", "plateau", "spike", "overfitting")


@dataclass(frozen=True)
class Series:
    steps: np.ndarray
    values: np.ndarray


def validation_key(key: str) -> str:
    """`loss` → `val_loss`; `train/loss` → `train/val_loss` (the prefix goes on the name)."""
    head, slash, name = key.rpartition("/")
    return f"{head}{slash}{VALIDATION_PREFIX}{name}"


def _steps(n: float) -> str:
    return f"{n:.0f} step" + ("" if round(n) == 1 else "s")


def _message(key: str, found: Found, hyper: Hyper) -> str:
    d = found.detail
    if found.kind == "oscillation":
        text = f"{key} oscillates with a period of about {_steps(d['period'])} from step "
        text += str(found.from_step)
        if "theoretical_period" in d:
            text += (
                f"; heavy-ball theory on ravine{hyper.settings()} predicts "
                f"{d['theoretical_period']:.1f} steps"
            )
        return text
    if found.kind == "plateau":
        return (
            f"{key} has plateaued from step {found.from_step}: it improved by "
            f"{d['relative_improvement']:.2%} of its level after that"
        )
    if found.kind == "spike":
        return f"{key} spikes at step {d['step']} to {d['value']:.4g} ({d['z']:g} local spreads)"
    if found.kind == "divergence":
        return f"{key} diverges from step {d['step']} (value {d['value']})"
    return (
        f"{d['val_key']} rises from step {found.from_step} ({d['relative_rise']:.1%} above "
        f"its best) while {key} keeps falling"
    )


def _found(key: str, train: Series, validation: Series | None) -> list[Found]:
    curve = Curve.of(key, train.steps, train.values)
    last_step = int(train.steps[-1]) if len(train.steps) else 0
    diverged = detectors.divergence(curve, last_step)
    found: list[Found | None] = [
        diverged,
        detectors.oscillation(curve),
        # A blow-up never improves again, which is no plateau.
        detectors.plateau(curve) if diverged is None else None,
        *detectors.spikes(curve),
    ]
    if validation is not None:
        val = Curve.of(validation_key(key), validation.steps, validation.values)
        found.append(detectors.overfitting(curve, val))
    return [f for f in found if f is not None]


def diagnose(
    key: str, train: Series, params: dict[str, Any], validation: Series | None = None
) -> list[Finding]:
    """The findings for one key, ordered by step, each with its message and advice."""
    hyper = Hyper.of(params)
    findings = []
    for found in _found(key, train, validation):
        detail = dict(found.detail)
        if found.kind == "oscillation" and (theory := theoretical_period(hyper)) is not None:
            detail["theoretical_period"] = round(theory, 1)
        worded = Found(found.kind, found.from_step, found.to_step, detail)
        findings.append(
            Finding(
                kind=found.kind,  # type: ignore[arg-type]  # the detectors' kinds are FindingKind
                from_step=found.from_step,
                to_step=found.to_step,
                detail=detail,
                message=_message(key, worded, hyper),
                advice=advise(found.kind, hyper, detail),
            )
        )
    return sorted(findings, key=lambda f: (f.from_step, KIND_ORDER.index(f.kind)))
