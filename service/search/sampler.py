"""The next points of a random or tpe sweep, from Optuna's samplers through ask-and-tell.

The study lives only in memory, rebuilt from our `sweep_trials` rows each time a trial is
needed: there is one schema (ours), and a restarted service or a second replica samples
from the same history. Each trial number gets its own sampler seed derived from the
sweep's, so a sweep replays the same points given the same outcomes.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import FrozenTrial, TrialState, create_trial

from service.search.history import PastTrial

optuna.logging.set_verbosity(optuna.logging.WARNING)
STATES = {
    "running": TrialState.RUNNING,
    "complete": TrialState.COMPLETE,
    "pruned": TrialState.PRUNED,
    "failed": TrialState.FAIL,
}
# TPE samples at random until this many trials ended (or a third of the budget, if less).
TPE_STARTUP_TRIALS = 10


def distributions(space: Mapping[str, Mapping[str, Any]]) -> dict[str, BaseDistribution]:
    """Optuna's distribution for each dimension of a (validated) space."""
    out: dict[str, BaseDistribution] = {}
    for name, spec in space.items():
        log = bool(spec.get("log", False))
        if spec["type"] == "choice":
            out[name] = CategoricalDistribution(spec["choices"])
        elif spec["type"] == "int":
            out[name] = IntDistribution(int(spec["low"]), int(spec["high"]), log=log)
        else:
            out[name] = FloatDistribution(float(spec["low"]), float(spec["high"]), log=log)
    return out


def trial_seed(search_seed: int, number: int) -> int:
    return (search_seed * 1_000_003 + number) % 2**32


class Sampler:
    """An in-memory study holding the sweep's history; `ask` gives the next point."""

    def __init__(
        self,
        strategy: str,
        space: Mapping[str, Mapping[str, Any]],
        mode: str,
        search_seed: int,
        history: list[PastTrial],
        budget: int,
    ) -> None:
        self.strategy = strategy
        self.search_seed = search_seed
        self.startup = max(2, min(TPE_STARTUP_TRIALS, budget // 3))
        self.distributions = distributions(space)
        self.study = optuna.create_study(direction="minimize" if mode == "min" else "maximize")
        for past in sorted(history, key=lambda trial: trial.number):
            self.study.add_trial(self._frozen(past))
        self.pending: dict[int, optuna.Trial] = {}

    def _frozen(self, past: PastTrial) -> FrozenTrial:
        state = STATES[past.state]
        known = {k: v for k, v in past.params.items() if k in self.distributions}
        return create_trial(
            state=state,
            params=known,
            distributions={k: self.distributions[k] for k in known},
            value=past.value if state == TrialState.COMPLETE else None,
            intermediate_values=dict(past.intermediate),
        )

    def _sampler(self, number: int) -> optuna.samplers.BaseSampler:
        seed = trial_seed(self.search_seed, number)
        if self.strategy == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        with warnings.catch_warnings():  # multivariate and constant_liar are "experimental"
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(
                seed=seed,
                n_startup_trials=self.startup,
                multivariate=True,
                constant_liar=True,
            )

    def ask(self) -> tuple[int, dict[str, Any]]:
        """The next trial's number (our numbering = the study's) and its point."""
        number = len(self.study.trials)
        self.study.sampler = self._sampler(number)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            trial = self.study.ask(self.distributions)
        self.pending[trial.number] = trial
        return trial.number, dict(trial.params)

    def tell_failed(self, number: int) -> None:
        """A point that could not be run: the sampler learns to avoid it."""
        self.study.tell(self.pending.pop(number), state=TrialState.FAIL)
