"""What `momentum.tensorboard` and `momentum.wandb` share: turning the values other
tools accept into numbers and params, warning once about what we do not carry, and
closing the runs a script never closed.

Values are converted when they are logged, on the caller's thread: a tensor that the
training loop changes in place afterwards (a running loss) must be sent as it was.
"""

from __future__ import annotations

import atexit
import sys
import warnings
from collections.abc import Callable
from typing import Any

# Imported first so that the SDK's exit handler (flush open runs, status unchanged) is
# registered before ours, and so runs after ours: we finish runs, then it flushes the rest.
import momentum.client.run  # noqa: F401

_warned: set[str] = set()
_closers: list[Callable[[], None]] = []


def scalar(value: Any) -> Any:
    """A Python number for NumPy and torch scalars (and one-element arrays or tensors);
    anything else unchanged, for the SDK to drop with its one warning per key."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    item = getattr(value, "item", None)
    if callable(item):
        try:
            converted = item()
        except (TypeError, ValueError, RuntimeError):  # not one element
            return value
        if isinstance(converted, int | float) and not isinstance(converted, bool):
            return converted
    return value


def param(value: Any) -> Any:
    """A JSON value the service stores as a param: scalars as numbers, containers as
    lists and dicts, anything else (a class, a device) as its text."""
    value = scalar(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        return {str(key): param(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [param(item) for item in value]
    return str(value)


def warn_once(what: str, message: str) -> None:
    """One warning per process for each thing we accept but do not carry."""
    if what not in _warned:
        _warned.add(what)
        warnings.warn(message, UserWarning, stacklevel=3)


def script_failed() -> bool:
    """At exit: did the script end with an uncaught exception? (The interpreter sets
    `sys.last_value` when it prints one, before atexit handlers run.)"""
    return getattr(sys, "last_value", None) is not None


def close_at_exit(closer: Callable[[], None]) -> None:
    """Call `closer` at interpreter exit (before the SDK's own flush of open runs)."""
    _closers.append(closer)


@atexit.register
def _close_all() -> None:
    while _closers:
        closer = _closers.pop()
        try:
            closer()
        except Exception as error:  # noqa: BLE001 - exiting: report, close the others
            print(f"momentum: could not close a run at exit: {error}", file=sys.stderr)
