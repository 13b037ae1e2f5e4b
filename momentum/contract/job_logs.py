"""A job's log: its child process's stdout and stderr as one UTF-8 text stream.

Offsets count bytes of that stream's UTF-8 encoding. The worker appends in order with
`JobLogAppend` (its offsets count from the start of its own attempt; the service puts
each attempt after a header line `--- attempt N ---`). A reader pages through it with
`GET /jobs/{id}/logs?offset=N` (`JobLogPage`), asking next for `next_offset`.

The service keeps at most MOMENTUM_MAX_JOB_LOG_BYTES of a job's log: the first half of
that as the head, then the newest tail; the middle is dropped as new text comes
(`truncated`, `dropped_bytes`). Offsets keep counting the whole stream, dropped bytes
included, so an offset never changes meaning.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from momentum.contract.common import ContractModel, Text
from momentum.contract.metrics import MAX_STEP

# The most text one append may carry (characters); the body limit is what binds
# (MOMENTUM_MAX_SMALL_BODY_BYTES, 1 MiB by default), and the shipper sends far less.
MAX_LOG_APPEND_CHARS = 1024 * 1024


class JobLogAppend(ContractModel):
    """Output of the worker's child, from byte `offset` of the current attempt's output."""

    lease_token: Text = Field(min_length=1, max_length=64)
    offset: int = Field(
        strict=True,
        ge=0,
        le=MAX_STEP,
        description="Where `text`'s first byte lies in this attempt's output (UTF-8 bytes). "
        "Text already stored there is not stored again: a resend is a no-op.",
    )
    text: Text = Field(max_length=MAX_LOG_APPEND_CHARS)


class JobLogAck(BaseModel):
    """How much of the current attempt's output the service holds: send from here."""

    received: int = Field(description="Bytes of this attempt's output stored so far.")


class JobLogPage(BaseModel):
    offset: int = Field(
        description="Where `text` begins in the job's log: the offset asked for, or the "
        "next kept byte when that one was dropped (then `truncated` is true)."
    )
    next_offset: int = Field(description="Where `text` ends: the offset to ask for next.")
    text: str = Field(description="At most 1 MiB of the log; empty when caught up.")
    truncated: bool = Field(description="The log went over the cap and lost its middle.")
    dropped_bytes: int = Field(default=0, description="How many bytes of the middle were dropped.")
    size: int = Field(default=0, description="The log's length in bytes, dropped bytes included.")
