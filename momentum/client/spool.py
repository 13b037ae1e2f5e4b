"""The spool: an append-only file holding, in order, what could not be sent yet.

One file per run, named after its `external_id`, so a later `momentum.Run` with the same
`external_id` finds it and `momentum sync PATH` can replay it anywhere. Text lines:

    momentum-spool 1
    C 0 {"name": ..., "external_id": ...}     the run's creation (RunCreate)
    P 5000 {"points": [...]}                  one metrics batch: count, exact request body
    U 0 {"status": "succeeded"}               a run update (RunUpdate)

A record is written with one `write` call and reaches the operating system before the
call returns (it survives the process being killed, not a power cut). A torn last line
(a process killed mid-write) is cut off when the file is opened again. Once everything
in it has been acknowledged the file is truncated back to its header, so it never grows
while the service keeps up.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO, NamedTuple

MAGIC = b"momentum-spool 1\n"
POINTS, UPDATE, CREATE = b"P", b"U", b"C"


class Record(NamedTuple):
    kind: bytes  # POINTS, UPDATE or CREATE
    body: bytes  # the exact JSON request body
    points: int = 0

    def line(self) -> bytes:
        return b"%s %d %s\n" % (self.kind, self.points, self.body)


class SpoolFormatError(ValueError):
    """The file is not a spool this version can read."""


def default_spool_dir() -> Path:
    """MOMENTUM_SPOOL_DIR, else $XDG_CACHE_HOME/momentum/spool (~/.cache/... by default)."""
    given = os.environ.get("MOMENTUM_SPOOL_DIR")
    if given:
        return Path(given)
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "momentum" / "spool"


def spool_path(directory: Path, external_id: str) -> Path:
    """A stable, filesystem-safe name: readable prefix plus a hash against collisions."""
    readable = re.sub(r"[^A-Za-z0-9_.-]", "_", external_id)[:64]
    digest = hashlib.sha256(external_id.encode()).hexdigest()[:12]
    return directory / f"{readable}-{digest}.spool"


def parse_line(line: bytes) -> Record:
    try:
        kind, count, body = line.rstrip(b"\n").split(b" ", 2)
        return Record(kind, body, int(count))
    except ValueError:
        raise SpoolFormatError(f"not a spool record: {line[:80]!r}") from None


def iter_records(path: Path) -> Iterator[Record]:
    """Every complete record in order, the creation record first; a torn last line is skipped.

    Streams the file, so replaying a long outage does not load it into memory.
    """
    with path.open("rb") as file:
        if file.readline() != MAGIC:
            raise SpoolFormatError(f"{path} is not a momentum spool file")
        first = True
        for line in file:
            if not line.endswith(b"\n"):
                return
            record = parse_line(line)
            if first and record.kind != CREATE:
                raise SpoolFormatError(f"{path} does not start with a run creation record")
            first = False
            yield record


class Spool:
    """One run's spool file. Not thread-safe: the outbox calls it under its lock.

    The file is created on the first `append`; an existing one (left by an earlier
    process) is adopted, its records becoming the oldest pending ones.
    """

    def __init__(self, path: Path, create: bytes) -> None:
        self.path = path
        self._create = Record(CREATE, create)
        self._writer: IO[bytes] | None = None
        self._reader: IO[bytes] | None = None
        self._start = 0  # offset of the first record after the header
        self._read_at = 0  # offset of the oldest unacknowledged record
        self._peeked: tuple[Record, int] | None = None
        self.pending = 0  # records written and not yet acknowledged
        self.pending_points = 0
        if path.exists():
            self._adopt()

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = self.path.open("ab", buffering=0)
        self._reader = self.path.open("rb")

    def _adopt(self) -> None:
        records = iter_records(self.path)
        header = next(records, None)
        if header is None:
            raise SpoolFormatError(f"{self.path} has no run creation record")
        self._start = len(MAGIC) + len(header.line())
        complete = self._start
        for record in records:
            complete += len(record.line())
            self.pending += 1
            self.pending_points += record.points
        os.truncate(self.path, complete)  # drop a torn last line
        self._open()
        self._read_at = self._start

    def append(self, record: Record) -> None:
        if self._writer is None:
            self._open()
            assert self._writer is not None
            self._writer.write(MAGIC + self._create.line())
            self._start = self._read_at = self._writer.tell()
        self._writer.write(record.line())
        self.pending += 1
        self.pending_points += record.points

    def peek(self) -> Record | None:
        """The oldest unacknowledged record, or None."""
        if self.pending == 0:
            return None
        if self._peeked is None:
            assert self._reader is not None
            self._reader.seek(self._read_at)
            line = self._reader.readline()
            self._peeked = (parse_line(line), len(line))
        return self._peeked[0]

    def advance(self) -> None:
        """Acknowledge the record `peek` returned; truncate the file when none is left."""
        record = self.peek()
        assert record is not None and self._peeked is not None
        self._read_at += self._peeked[1]
        self._peeked = None
        self.pending -= 1
        self.pending_points -= record.points
        if self.pending == 0 and self._writer is not None and self._reader is not None:
            self._writer.truncate(self._start)
            self._read_at = self._start
            # The reader's buffer may hold bytes the truncation removed: start afresh.
            self._reader.close()
            self._reader = self.path.open("rb")

    def close(self, *, delete_if_empty: bool = True) -> Path | None:
        """Close the file; returns its path if records remain in it, else None."""
        for file in (self._writer, self._reader):
            if file is not None:
                file.close()
        self._writer = self._reader = None
        if self.pending:
            return self.path
        if delete_if_empty:
            self.path.unlink(missing_ok=True)
        return None
