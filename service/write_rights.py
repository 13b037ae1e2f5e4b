"""Who may write which run, beyond the scope a route requires (SECURITY.md's table).

The worker token: a job's run only while the job runs, and not its params once it has
points (`service.storage.runs.worker_write_refusal`). A run token: its own run only,
never its params (they are its job's, checked at submit time). Every route that writes
a run asks here, in the writing transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from service.auth import Caller, Role
from service.domain_errors import Forbidden
from service.models import Run
from service.storage import runs as run_store


def write_refusal(
    session: Session, run: Run, caller: Caller, params: dict[str, Any] | None = None
) -> Forbidden | None:
    """Why `caller` may not write `run` (Forbidden, to raise or return), or None if it may.
    `params`: the params the request would leave the run with, if it sets any."""
    if caller.role is Role.worker:
        return run_store.worker_write_refusal(session, run, params)
    if caller.role is Role.run:
        return run_token_refusal(run, caller, params)
    return None


def _not_this_run(caller: Caller) -> Forbidden:
    return Forbidden("forbidden", f"this token may write only run {caller.run_id}")


def check_own_run(caller: Caller, run_id: int) -> None:
    """403 if `caller` is a run token of another run (for a route naming the run in
    its body, before it answers anything else about that run)."""
    if not caller.may_write(run_id):
        raise _not_this_run(caller)


def run_token_refusal(run: Run, caller: Caller, params: dict[str, Any] | None) -> Forbidden | None:
    if not caller.may_write(run.id):
        return _not_this_run(caller)
    if params is not None and params != run.params:
        return Forbidden(
            "params_frozen",
            f"a run token may not change run {run.id}'s params: they are its job's, "
            "checked when the job was submitted",
        )
    return None


def check_writable(
    session: Session, run: Run, caller: Caller, params: dict[str, Any] | None = None
) -> None:
    refusal = write_refusal(session, run, caller, params)
    if refusal is not None:
        raise refusal
