"""A sweep's trials as the sampler sees them (kept apart from Optuna, so reading them
does not import it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class PastTrial:
    """A trial as our tables hold it."""

    number: int
    params: dict[str, Any]
    state: str
    value: float | None = None
    intermediate: dict[int, float] = field(default_factory=dict)
