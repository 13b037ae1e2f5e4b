"""Stopping a job early: the verdict a job and its run keep, and a manual stop's body.

Its own module because both jobs (`JobPublic`) and runs (`RunPublic`) show the verdict.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from momentum.contract.common import ContractModel, Text

# A reason longer than this is cut (it is also the run's tag, and tags hold 1000 chars).
MAX_REASON_CHARS = 1000


class EarlyStopped(BaseModel):
    """Why a sweep's early-stopping rule ended a job before its last step."""

    step: int = Field(description="The rung (or check) step at which it was judged.")
    rule: Literal["asha", "median", "manual"] = Field(
        description="`asha` or `median` (the sweep's rule), or `manual` (POST /jobs/{id}/stop)."
    )
    reason: str = Field(
        description="A sentence with the numbers, e.g. `stopped at step 300: val_loss 0.84 "
        "is not in the top 1/3 at rung 300 (cutoff 0.41, 9 runs reached it)`."
    )


class JobStop(ContractModel):
    """POST /jobs/{id}/stop: end a running job early, keeping its result."""

    reason: Text | None = Field(
        default=None,
        min_length=1,
        max_length=500,
        description="Why, in words; the verdict says `stopped by hand at step N: <reason>`.",
    )
