"""How a job ended, as the worker reports it: the outcome, its body, the error text and
the summary, shared by the built-in trainer's path and the entry-point path."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any

from momentum.contract import JobComplete, JobFail, JobRelease
from momentum.contract.values import encode_value

if TYPE_CHECKING:
    from trainer.loop import TrainResult

MAX_ERROR_CHARS = 10_000  # what JobFail.error holds
OutcomeBody = JobComplete | JobFail | JobRelease


class Outcome(enum.Enum):
    completed = "complete"
    failed = "fail"
    cancelled = "cancel"
    released = "release"
    lost = "lost"


def fail_text(error: str) -> str:
    """The error as `JobFail` takes it (no NUL, at most its length, never empty), so an
    odd exception message cannot stop the worker from reporting the failure."""
    return error.replace("\0", "\ufffd")[:MAX_ERROR_CHARS] or "error"


def summary(result: TrainResult) -> dict[str, Any]:
    """The result as JSON: non-finite floats as the contract's strings (NaN, Infinity)."""
    values: dict[str, Any] = {
        "steps_done": result.steps_done,
        "final_loss": result.final_loss,
        "final_val_loss": result.final_val_loss,
        "best_val_accuracy": result.best_val_accuracy,
        "elapsed_s": round(result.elapsed_s, 3),
    }
    return {key: json_float(value) for key, value in values.items()}


def json_float(value: Any) -> Any:
    return encode_value(value) if isinstance(value, float) else value
