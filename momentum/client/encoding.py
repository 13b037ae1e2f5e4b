"""Logged values to request bodies, off the training thread and as cheaply as Python allows.

An entry is what one `run.log()` call queued: `(step, wall_time, {key: value})`. The
common case (an int step, a known key, a finite float) costs two type checks and one
dict per point; anything else takes a slow path that converts what it can (ints, NumPy
and torch scalars) and drops, with one warning per key, what the service would reject
(bad keys, booleans, strings): one bad value must not sink a whole batch.

orjson writes NaN and ±Inf as `null`, which the contract forbids. `"value":null` can only
come from such a value (a key cannot contain `"` or `:`), so the body is checked for it
and, in the rare batch that has one, re-encoded with the contract's "NaN"/"Infinity"
strings. Finite batches pay for one substring search instead of a test per point.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from pydantic import BaseModel

from momentum.contract.common import METRIC_KEY_RE
from momentum.contract.metrics import MAX_STEP
from momentum.contract.values import encode_value

log = logging.getLogger("momentum.client")

Entry = tuple[Any, float, Mapping[str, Any]]  # (step, wall_time, values)
_DROP = object()
_NULL_VALUE = b'"value":null'


class BatchEncoder:
    """Encodes entries into `{"points": [...]}` bodies; remembers keys already checked."""

    def __init__(self) -> None:
        self._valid_keys: set[str] = set()
        self._warned: set[str] = set()
        self.dropped_points = 0

    def encode(self, entries: Sequence[Entry]) -> tuple[bytes, int]:
        """The request body for these entries and how many points it holds."""
        points: list[dict[str, Any]] = []
        append = points.append
        valid = self._valid_keys
        for step, wall_time, values in entries:
            if type(step) is not int or not 0 <= step <= MAX_STEP:
                step = self._checked_step(step, len(values))
                if step is None:
                    continue
            for key, value in values.items():
                if type(value) is not float or key not in valid:
                    value = self._checked_value(key, value)
                    if value is _DROP:
                        continue
                append({"key": key, "step": step, "value": value, "wall_time": wall_time})
        body = orjson.dumps({"points": points})
        if _NULL_VALUE in body:
            body = encode_point_dicts(points)
        return body, len(points)

    def _checked_step(self, step: Any, size: int) -> int | None:
        try:
            as_int = int(step) if not isinstance(step, bool | float) else None
        except (TypeError, ValueError):
            as_int = None
        if as_int is not None and 0 <= as_int <= MAX_STEP:
            return as_int
        self.dropped_points += size
        self._warn_once(
            f"step:{type(step).__name__}",
            f"dropped values logged at step {step!r}: "
            f"a step must be an integer from 0 to {MAX_STEP}",
        )
        return None

    def _checked_value(self, key: Any, value: Any) -> Any:
        if key not in self._valid_keys:
            if not (isinstance(key, str) and METRIC_KEY_RE.match(key)):
                self.dropped_points += 1
                self._warn_once(
                    f"key:{key!r}",
                    f"dropped metric {key!r}: a key is 1-250 "
                    "letters, digits, '_', '-', '.', '/' or spaces",
                )
                return _DROP
            self._valid_keys.add(key)
        if type(value) is float:
            return value
        if not isinstance(value, bool):
            try:
                return float(value)  # ints, NumPy and torch scalars, Decimals
            except (TypeError, ValueError):
                pass
        self.dropped_points += 1
        self._warn_once(
            f"value:{key}", f"dropped a value of metric {key!r}: {value!r} is not a number"
        )
        return _DROP

    def _warn_once(self, what: str, message: str) -> None:
        if what not in self._warned:
            self._warned.add(what)
            log.warning("%s (further ones like it are dropped silently)", message)


def encode_point_dicts(points: Sequence[Mapping[str, Any]]) -> bytes:
    """A body from point dicts, with non-finite values as the contract's strings."""
    return orjson.dumps({"points": [_with_token(point) for point in points]})


def _with_token(point: Mapping[str, Any]) -> Mapping[str, Any]:
    value = point["value"]
    if isinstance(value, float) and value - value != 0.0:  # NaN or ±Inf
        return {**point, "value": encode_value(value)}
    return point


def encode_body(body: BaseModel) -> bytes:
    """A request model as JSON; only the fields set are sent, as the caller set them."""
    return orjson.dumps(body.model_dump(mode="json", exclude_unset=True))


def query_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The query parameters given: None means "not given", so it is left out."""
    return {name: value for name, value in params.items() if value is not None}
