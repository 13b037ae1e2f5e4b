"""Run tokens: what a claimed job's own code gets instead of the worker's token.

`mmr.<job id>.<mac>`, where mac = base64url(HMAC-SHA256(key=the job's lease token,
msg="run:<job id>:<run id>")). Nothing is stored: a presented token is checked by
loading its job and recomputing the mac with the job's *current* lease token. The lease
token is a fresh secret of each claim, held only by the worker that claimed, so:

- a run token names exactly one run, its job's, and grants nothing on any other;
- it dies with the lease: once the job ends, is released, or is taken back after its
  lease lapsed (its lease token cleared or replaced), the mac no longer verifies (401).
  Like the worker's own lease token, it still works while a lapsed lease has not been
  taken back yet (at most the reaper's interval): the worker was only late, nobody else
  owns the job, and its next heartbeat renews the lease, which a child's reporter
  refused with 401 meanwhile could not recover from;
- the child holding it cannot derive the lease token from it, so it cannot act as the
  worker (heartbeat, complete or release the job).

What a valid run token may do is service/auth.py's (the `run` role).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from momentum.contract import Status
from service.db import transaction
from service.models import MAX_ROW_ID, Job

PREFIX = "mmr."
_MAC_CHARS = 43  # base64url of 32 bytes, unpadded


def _mac(lease_token: str, job_id: int, run_id: int) -> str:
    digest = hmac.new(
        lease_token.encode(), f"run:{job_id}:{run_id}".encode(), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def mint(job_id: int, run_id: int, lease_token: str) -> str:
    """The run token of a claim: valid while `lease_token` is the job's lease."""
    return f"{PREFIX}{job_id}.{_mac(lease_token, job_id, run_id)}"


def looks_like_run_token(presented: str) -> bool:
    return presented.startswith(PREFIX)


def _parse(presented: str) -> tuple[int, str] | None:
    """(job id, mac) of a well-formed token; None for anything else."""
    job_part, dot, mac = presented.removeprefix(PREFIX).partition(".")
    if not dot or len(mac) != _MAC_CHARS or not (job_part.isascii() and job_part.isdigit()):
        return None
    # One spelling per job (no leading zeros); no int() of a 5,000-digit part.
    if len(job_part) > 19 or job_part.startswith("0") or int(job_part) > MAX_ROW_ID:
        return None
    return int(job_part), mac


def run_of(session: Session, presented: str) -> int | None:
    """The run this token may write now; None if it is malformed, forged or expired."""
    parsed = _parse(presented)
    if parsed is None:
        return None
    job_id, mac = parsed
    live = session.execute(
        select(Job.run_id, Job.lease_token).where(
            Job.id == job_id, Job.status == Status.running.value
        )
    ).first()
    if live is None or live.run_id is None or live.lease_token is None:
        return None
    expected = _mac(live.lease_token, job_id, live.run_id)
    return live.run_id if hmac.compare_digest(expected.encode(), mac.encode()) else None


def verify(sessions: sessionmaker[Session], presented: str) -> int | None:
    """`run_of` in a read transaction of its own (for the token gate, before routing)."""
    with transaction(sessions, write=False) as session:
        return run_of(session, presented)
