"""MLflow's own sentences for invalid requests, so its clients and tests (and people
reading errors) see what an MLflow server says: `Missing value for required parameter
'p'.`, `Invalid value X for parameter 'p' supplied: ...` (X as JSON). Fields the routes'
models refuse are worded here too (`validation_text`); service/mlflow/errors.py raises
them as INVALID_PARAMETER_VALUE."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

API_DOCS = " See the API docs for more information about request parameters."


def missing_text(param: str) -> str:
    return f"Missing value for required parameter '{param}'.{API_DOCS}"


def _as_json(value: Any) -> str:
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 200 else f"{text[:200]}..."


def invalid_text(param: str, value: Any) -> str:
    hint = f" Hint: Value was of type '{type(value).__name__}'."
    return f"Invalid value {_as_json(value)} for parameter '{param}' supplied: {hint}{API_DOCS}"


def validation_text(errors: Sequence[Any]) -> str | None:
    """The first refused field in MLflow's words; None when the body as a whole is
    unreadable (not JSON, not an object)."""
    for error in errors:
        loc = [part for part in error.get("loc", ()) if part not in ("body", "query")]
        if not loc or not isinstance(loc[0], str):
            continue
        value = error.get("input")
        if error.get("type") == "missing" or value is None:
            return missing_text(loc[0])
        return invalid_text(loc[0], value)
    return None
