"""Metric values on the wire, including the non-finite ones.

NaN and ±Infinity are real training outcomes (divergence), so they travel faithfully.
Input accepts numbers, the bare `NaN`/`Infinity` tokens Python's json emits, and the
strings "NaN", "Infinity", "-Infinity"; output always uses those strings so that a
browser's `JSON.parse` reads every response.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Annotated, Literal

from pydantic import BeforeValidator, WithJsonSchema

NonFiniteToken = Literal["NaN", "Infinity", "-Infinity"]
EncodedValue = float | NonFiniteToken

_TOKENS: dict[str, float] = {
    "nan": math.nan,
    "infinity": math.inf,
    "+infinity": math.inf,
    "inf": math.inf,
    "-infinity": -math.inf,
    "-inf": -math.inf,
}


def _parse_value(raw: object) -> float:
    if isinstance(raw, bool):
        raise ValueError("a metric value must be a number, not a boolean")
    if isinstance(raw, int | float):
        return float(raw)
    if isinstance(raw, str) and raw.strip().lower() in _TOKENS:
        return _TOKENS[raw.strip().lower()]
    raise ValueError('a metric value must be a number or one of "NaN", "Infinity", "-Infinity"')


MetricValue = Annotated[
    float,
    BeforeValidator(_parse_value),
    WithJsonSchema(
        {
            "anyOf": [{"type": "number"}, {"enum": ["NaN", "Infinity", "-Infinity"]}],
            "description": 'A number, or "NaN", "Infinity", "-Infinity" for non-finite outcomes.',
        }
    ),
]


def encode_value(value: float | None) -> EncodedValue:
    """One float as it goes on the wire; `None` (how storage keeps NaN) becomes "NaN"."""
    if value is None or value != value:
        return "NaN"
    if value == math.inf:
        return "Infinity"
    if value == -math.inf:
        return "-Infinity"
    return value


def encode_values(values: Iterable[float | None]) -> list[EncodedValue]:
    return [encode_value(v) for v in values]


def decode_value(value: EncodedValue | None) -> float:
    """The inverse of `encode_value`, for clients reading responses."""
    return _parse_value(value) if value is not None else math.nan
