"""What storage and analysis refuse, in their own words; no HTTP here.

service/errors.py maps each kind once to the contract's status and body (and, under an
MLflow route, service/mlflow/errors.py reshapes that answer as for any other error).
`code` is the contract's error code: the one name both sides share.
"""

from __future__ import annotations


class DomainError(Exception):
    """A request the data does not allow, with a message a person can act on."""

    code = "domain_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    """`kind` with these ids does not exist: `job 7 does not exist`, `runs 3, 4 do not
    exist` (the plural for more than one id)."""

    code = "not_found"

    def __init__(self, kind: str, *ids: object) -> None:
        self.kind = kind
        self.ids = ids
        shown = ", ".join(str(ident) for ident in ids)
        if len(ids) == 1:
            super().__init__(f"{kind} {shown} does not exist")
        else:
            super().__init__(f"{kind}s {shown} do not exist")


class Conflict(DomainError):
    """The thing's state does not allow it now (a job that already ended, ...)."""

    code = "conflict"


class LeaseNotHeld(DomainError):
    """A worker's lease on the job lapsed or the job ended: the worker must stop."""

    code = "lease_not_held"

    def __init__(self, job_id: int, status: str) -> None:
        self.job_id = job_id
        super().__init__(
            f"the lease on job {job_id} is no longer held: it lapsed and the job was taken "
            f"back, or the job ended (now {status}); stop working on it"
        )


class Forbidden(DomainError):
    """The caller's token may not do this to this thing (`code` says why)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class InvalidQuery(DomainError):
    """A query parameter the data cannot answer (e.g. grouping by a parameter no run
    has); `msg` is the short reason for the parameter, `message` the whole sentence."""

    code = "validation_error"

    def __init__(self, name: str, msg: str, message: str) -> None:
        super().__init__(message)
        self.name = name
        self.msg = msg
