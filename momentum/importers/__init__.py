"""`momentum import`: bring history from TensorBoard event files and MLflow stores.

The readers need the `import` extra (`pip install 'momentum-monitor[import]'`: the
`tensorboard` package's event reader and `mlflow-skinny`); `momentum --help` loads
none of it. See docs/import.md for how re-imports stay idempotent.
"""

from __future__ import annotations

import importlib
import re
from types import ModuleType

EXTRA_HINT = "pip install 'momentum-monitor[import]'"
# A metric key the service accepts (momentum.contract.common.METRIC_KEY_PATTERN).
_KEY_REFUSED = re.compile(r"[^A-Za-z0-9_\-./ ]")


class MissingExtra(ImportError):
    """A reader of the `import` extra is not installed."""


def require(module: str, what: str) -> ModuleType:
    """`module`, or MissingExtra telling the user how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtra(
            f"importing from {what} needs the `{module.split('.')[0]}` package: {EXTRA_HINT}"
        ) from exc


def metric_key(tag: str) -> str:
    """`tag` as a metric key: characters the service refuses become `_`, at most 250."""
    return _KEY_REFUSED.sub("_", tag)[:250] or "_"
