"""MLflow's numbers as protobuf's JSON mapping has them, read in one place.

An int64 is a JSON number or its digits as a string (other MLflow clients send those),
never a boolean; a double is a number or its text ("NaN", "Infinity", "0.5"). Request
bodies validated by pydantic (service/mlflow/schemas.py) read int64 text with
`digits_as_int`, then check the int strictly; log-batch's metrics, parsed by hand for
speed (service/mlflow/metrics.py), use `proto_int` and `proto_double`. A page token is
an offset (or a step) this server gave out.
"""

from __future__ import annotations

import re
from typing import Any

from momentum.contract.common import is_int64
from service.mlflow.errors import invalid

_INT64_TEXT = re.compile(r"-?[0-9]{1,19}")


def int64_of(text: str) -> int | None:
    """`text` as an int64 when it is one in ASCII digits (an optional '-'), else None.
    Not `str.isdigit()`: that takes '²', which `int()` then refuses; and no digits past
    int64's, which no column and no step holds (and `int()` refuses past 4,300)."""
    if not _INT64_TEXT.fullmatch(text):
        return None
    value = int(text)
    return value if is_int64(value) else None


def digits_as_int(value: Any) -> Any:
    """An int64's digits as the number; anything else unchanged, for the field's strict
    int check to refuse (a boolean, a fraction, other text)."""
    if isinstance(value, str):
        number = int64_of(value)
        return value if number is None else number
    return value


def proto_int(raw: Any) -> int:
    """A whole number: an int, a float without a fraction, or an int64's digits.
    Raises TypeError or ValueError for anything else (a boolean included)."""
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise TypeError(f"{raw!r} is no integer")
    if isinstance(raw, float) and not raw.is_integer():
        raise ValueError(f"{raw} is no whole number")
    number = digits_as_int(raw)
    if isinstance(number, str):
        raise ValueError(f"{raw!r} is no int64")
    return int(number)


def proto_double(raw: Any) -> float:
    """A number or its text ("NaN", "Infinity"); raises TypeError or ValueError."""
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise TypeError(f"{raw!r} is no number")
    return float(raw)


def shown(raw: str) -> str:
    """Text from a request, cut short for an error message (a 5,000-digit id, say)."""
    return raw if len(raw) <= 40 else f"{raw[:40]}... ({len(raw)} characters)"


def page_offset(token: str | None) -> int:
    """A page token: an offset or a step this server gave out, so an int64 from 0 up."""
    if not token:
        return 0
    offset = int64_of(token)
    if offset is None or offset < 0:
        raise invalid(f"page_token {shown(token)!r} is not one this server gave out")
    return offset


def page_size(value: int, largest: int) -> int:
    if not 1 <= value <= largest:
        raise invalid(f"max_results must be between 1 and {largest}, not {value}")
    return value


def paged(found: list[Any], offset: int, size: int) -> tuple[list[Any], str | None]:
    """One page of `found` and the token of the next page (None on the last)."""
    following = str(offset + size) if len(found) > offset + size else None
    return found[offset : offset + size], following
