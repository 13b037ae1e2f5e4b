"""Job logs: the worker appends its child's output, readers page through it by offset.

Offsets count UTF-8 bytes of the job's whole log. A worker's offsets count from the
start of its own attempt (it knows nothing of earlier ones): the log row records where
the current attempt's output begins, and from the second attempt on that output is
preceded by a line `--- attempt N ---`. A resend of text already stored is a no-op.

At most `cap` bytes are kept: the log's first `cap // 2` bytes (the head, never dropped),
then the newest text; as text arrives the oldest text after the head is dropped, down to
a character boundary. Offsets keep counting dropped bytes, so they never change meaning.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from momentum.contract.job_logs import JobLogAppend, JobLogPage
from service.domain_errors import Conflict, InvalidQuery
from service.models import Job, JobLog, JobLogChunk
from service.storage.jobs import get_job
from service.storage.leases import held_job

# The most text one read answers; the reader asks again from `next_offset`.
MAX_READ_BYTES = 1024 * 1024
_CHUNKS_PER_QUERY = 256


def char_start(data: bytes, at: int) -> int:
    """The first character boundary at or after byte `at` of UTF-8 `data`."""
    while at < len(data) and data[at] & 0xC0 == 0x80:  # a continuation byte
        at += 1
    return min(at, len(data))


def char_end(data: bytes, at: int) -> int:
    """The last character boundary at or before byte `at` of UTF-8 `data`."""
    at = min(at, len(data))
    while 0 < at < len(data) and data[at] & 0xC0 == 0x80:
        at -= 1
    return at


def append(session: Session, job_id: int, body: JobLogAppend, cap: int) -> int:
    """Store what is new of `body.text`; the bytes of this attempt's output now held.

    The lease is fenced like a heartbeat's (LeaseNotHeld: 409). An offset past what
    is held would leave a gap: refused (Conflict), the answer says where to resume.
    """
    job = held_job(session, job_id, body.lease_token)  # locks the job: appends serialize
    log = _log_for_attempt(session, job, cap)
    received = log.size - log.attempt_start
    if body.offset > received:
        raise Conflict(
            f"job {job_id}'s log holds {received} bytes of this attempt's output; "
            f"an append at offset {body.offset} would leave a gap: send from {received}"
        )
    data = body.text.encode()
    new = data[received - body.offset :]
    if new and char_start(new, 0) != 0:
        raise Conflict(
            f"offset {body.offset} does not line up with the {received} bytes held: "
            "the text resent differs from what was sent before"
        )
    _store(session, log, new, cap)
    session.flush()
    return log.size - log.attempt_start


def _log_for_attempt(session: Session, job: Job, cap: int) -> JobLog:
    log = session.get(JobLog, job.id)
    if log is None:
        log = JobLog(job_id=job.id, attempt=job.attempts, attempt_start=0)
        log.size = log.stored_bytes = log.head_bytes = 0
        session.add(log)
        session.flush()
    if log.attempt != job.attempts or (log.size == 0 and job.attempts > 1):
        header = ("\n" if log.size else "") + f"--- attempt {job.attempts} ---\n"
        _store(session, log, header.encode(), cap)
        log.attempt, log.attempt_start = job.attempts, log.size
    return log


def _store(session: Session, log: JobLog, data: bytes, cap: int) -> None:
    """Append `data` at the log's end: to the head while it grows, then to the tail."""
    if not data:
        return
    if log.size == log.head_bytes and log.size < cap // 2:
        cut = char_end(data, cap // 2 - log.size)
        if cut:
            _insert(session, log, data[:cut])
            log.head_bytes += cut
        data = data[cut:]
    if not data:
        return
    budget = cap - log.head_bytes
    if len(data) > budget:  # more than the whole tail holds: only its end is kept
        skipped = char_start(data, len(data) - budget)
        log.size += skipped
        data = data[skipped:]
    _insert(session, log, data)
    _drop_middle(session, log, cap)


def _insert(session: Session, log: JobLog, data: bytes) -> None:
    session.add(
        JobLogChunk(job_id=log.job_id, start=log.size, nbytes=len(data), text=data.decode())
    )
    log.size += len(data)
    log.stored_bytes += len(data)


def _drop_middle(session: Session, log: JobLog, cap: int) -> None:
    """Drop the oldest text after the head until what is kept fits in `cap`."""
    session.flush()
    excess = log.stored_bytes - cap
    while excess > 0:
        oldest = session.scalars(
            select(JobLogChunk)
            .where(JobLogChunk.job_id == log.job_id, JobLogChunk.start >= log.head_bytes)
            .order_by(JobLogChunk.start)
            .limit(1)
        ).first()
        if oldest is None:  # only the head is left (the cap was lowered since)
            return
        if oldest.nbytes <= excess:
            session.delete(oldest)
            dropped = oldest.nbytes
        else:
            dropped = _trim_front(session, oldest, excess)
        session.flush()
        log.stored_bytes -= dropped
        excess -= dropped


def _trim_front(session: Session, chunk: JobLogChunk, excess: int) -> int:
    """Drop at least `excess` bytes from the chunk's front, at a character boundary."""
    data = chunk.text.encode()
    cut = char_start(data, excess)
    rest = data[cut:]
    session.execute(
        update(JobLogChunk)
        .where(JobLogChunk.job_id == chunk.job_id, JobLogChunk.start == chunk.start)
        .values(start=chunk.start + cut, nbytes=len(rest), text=rest.decode())
    )
    session.expunge(chunk)
    return cut


@dataclass
class _Page:
    offset: int
    pieces: list[bytes]
    end: int


def read(session: Session, job_id: int, offset: int, max_bytes: int = MAX_READ_BYTES) -> JobLogPage:
    """Up to `max_bytes` of the log from `offset`; never across a dropped part, so a
    read inside or at the start of one begins at the next kept text."""
    get_job(session, job_id)  # 404 for a job that does not exist
    log = session.get(JobLog, job_id)
    size, stored = (log.size, log.stored_bytes) if log is not None else (0, 0)
    if offset > size:
        raise InvalidQuery(
            "offset",
            f"past the end of the log ({size} bytes)",
            f"offset {offset} is past the end of job {job_id}'s log ({size} bytes)",
        )
    page = _collect(_chunks_from(session, job_id, offset), offset, max_bytes)
    return JobLogPage(
        offset=page.offset,
        next_offset=page.end,
        text=b"".join(page.pieces).decode(),
        truncated=size > stored,
        dropped_bytes=size - stored,
        size=size,
    )


def _collect(chunks: Iterator[JobLogChunk], offset: int, max_bytes: int) -> _Page:
    page = _Page(offset, [], offset)
    left = max_bytes
    for chunk in chunks:
        if chunk.start + chunk.nbytes <= offset:
            continue  # the piece before the offset, which lies in a dropped part
        if page.pieces and chunk.start != page.end:
            break  # a dropped part: the next read begins after it
        data = chunk.text.encode()
        begin = char_start(data, max(0, page.end - chunk.start))
        taken = data[begin : char_end(data, begin + left)]
        if not page.pieces:
            page.offset = chunk.start + begin
        page.pieces.append(taken)
        page.end = chunk.start + begin + len(taken)
        left -= len(taken)
        if left <= 0 or begin + len(taken) < len(data):
            break
    return page


def _chunks_from(session: Session, job_id: int, offset: int) -> Iterator[JobLogChunk]:
    """The job's chunks from the one holding `offset` on, in order, a page at a time."""
    first = session.scalar(
        select(func.max(JobLogChunk.start)).where(
            JobLogChunk.job_id == job_id, JobLogChunk.start <= offset
        )
    )
    start = first if first is not None else 0
    while True:
        chunks = session.scalars(
            select(JobLogChunk)
            .where(JobLogChunk.job_id == job_id, JobLogChunk.start >= start)
            .order_by(JobLogChunk.start)
            .limit(_CHUNKS_PER_QUERY)
        ).all()
        yield from chunks
        if len(chunks) < _CHUNKS_PER_QUERY:
            return
        start = chunks[-1].start + 1
