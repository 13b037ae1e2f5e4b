"""The params copied into indexed columns (`optimizer`, `momentum`, `lr`), one rule for
every route that sets params: /api/v1 and MLflow's.

A number fills `momentum`/`lr` whether it comes as a JSON number (0.9) or as its text
("0.9", "1e-3": MLflow's params are always text, and /api/v1 clients send text too);
anything else (a boolean, a non-finite value, other text) leaves the column null and
stays in params only. An optimizer name longer than its column is kept in params only:
PostgreSQL would refuse it where SQLite stores it, and a run must not be refused for a
long name. Grouping by optimizer falls back to params, so it still groups; the
`optimizer=` filter (at most as long as the column) cannot name it.
"""

from __future__ import annotations

import math
from typing import Any

from service.models import OPTIMIZER_LENGTH

INDEXED_PARAMS = ("optimizer", "momentum", "lr")


def indexed_number(value: Any) -> float | None:
    """A finite number, or text `float()` reads as one; else None."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def indexed_columns(params: dict[str, Any]) -> dict[str, Any]:
    """The indexed columns' values for a run with `params`."""
    optimizer = params.get("optimizer")
    fits = isinstance(optimizer, str) and len(optimizer) <= OPTIMIZER_LENGTH
    return {
        "optimizer": optimizer if fits else None,
        "momentum": indexed_number(params.get("momentum")),
        "lr": indexed_number(params.get("lr")),
    }
