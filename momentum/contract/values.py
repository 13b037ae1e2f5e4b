"""Metric values on the wire, including the non-finite ones.

NaN and ±Infinity are real training outcomes (divergence), so they travel faithfully.
Input accepts numbers, the bare `NaN`/`Infinity` tokens Python's json emits, and the
strings "NaN", "Infinity", "-Infinity"; output always uses those strings so that a
browser's `JSON.parse` reads every response.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import Strict, WithJsonSchema

NonFiniteToken = Literal["NaN", "Infinity", "-Infinity"]
EncodedValue = float | NonFiniteToken

# A JSON number (bare NaN/Infinity tokens included) or one of the three strings; no
# booleans, no other strings. Validated inside pydantic-core, without a Python call per
# point: this runs 10,000 times per ingest request. Consumers turn the strings into
# floats with `float()`, which reads exactly these three spellings.
MetricValue = Annotated[
    Annotated[float, Strict()] | NonFiniteToken,
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


def decode_value(value: EncodedValue | None) -> float:
    """The inverse of `encode_value`, for clients reading responses."""
    return math.nan if value is None else float(value)
