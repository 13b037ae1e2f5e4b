"""The spool file and the outbox that orders memory and disk, tested directly."""

from __future__ import annotations

from pathlib import Path

import pytest

from momentum.client.outbox import Outbox
from momentum.client.spool import (
    MAGIC,
    POINTS,
    UPDATE,
    Record,
    Spool,
    SpoolFormatError,
    iter_records,
    spool_path,
)

CREATE = b'{"external_id":"x"}'


def batch(n: int) -> Record:
    return Record(POINTS, b'{"points":[%d]}' % n, n)


def drain(outbox: Outbox) -> list[Record]:
    out = []
    while (record := outbox.peek(timeout=0)) is not None:
        out.append(record)
        outbox.ack()
    return out


def test_outbox_keeps_order_across_memory_and_disk(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "r.spool", CREATE)
    outbox = Outbox(spool, max_memory_bytes=1024)
    outbox.put(batch(1))
    outbox.put(batch(2))
    assert spool.pending == 0, "while the service is up, records stay in memory"
    outbox.mark_down()
    assert (spool.pending, outbox.memory_bytes) == (2, 0), "going down spills memory first"
    outbox.put(batch(3))
    outbox.mark_up()
    outbox.put(batch(4))  # up again, but older records are on disk: this one queues behind
    assert spool.pending == 4
    assert [r.points for r in drain(outbox)] == [1, 2, 3, 4]
    outbox.put(batch(5))
    assert (spool.pending, outbox.pending) == (0, 1), "an empty spool lets memory be used again"


def test_a_record_acknowledged_after_it_moved_to_disk_is_not_sent_again(tmp_path: Path) -> None:
    outbox = Outbox(Spool(tmp_path / "r.spool", CREATE), max_memory_bytes=1024)
    outbox.put(batch(1))
    in_flight = outbox.peek(timeout=0)
    outbox.mark_down()  # the send of `in_flight` fails for another request meanwhile
    outbox.put(batch(2))
    outbox.ack()  # ... yet `in_flight` itself was delivered
    assert in_flight == batch(1) and drain(outbox) == [batch(2)]


def test_a_full_memory_budget_sends_records_to_disk(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "r.spool", CREATE)
    outbox = Outbox(spool, max_memory_bytes=len(batch(1).body) * 2)
    for n in range(1, 6):
        outbox.put(batch(n))
    assert (outbox.memory_bytes, spool.pending) == (0, 5)
    assert [r.points for r in drain(outbox)] == [1, 2, 3, 4, 5]


def test_a_drained_spool_shrinks_back_to_its_header(tmp_path: Path) -> None:
    path = tmp_path / "r.spool"
    spool = Spool(path, CREATE)
    for n in range(3):
        spool.append(batch(n))
    header = len(MAGIC) + len(Record(b"C", CREATE).line())
    assert path.stat().st_size > header
    for _ in range(3):
        spool.peek()
        spool.advance()
    assert path.stat().st_size == header
    spool.append(batch(9))  # reuse after truncation reads the new record, not stale bytes
    assert spool.peek() == batch(9)
    assert spool.close() == path and path.exists()


def test_an_empty_spool_is_deleted_on_close(tmp_path: Path) -> None:
    path = tmp_path / "r.spool"
    spool = Spool(path, CREATE)
    spool.append(batch(1))
    spool.peek()
    spool.advance()
    assert spool.close() is None and not path.exists()


def test_an_existing_spool_is_adopted_and_a_torn_last_line_cut(tmp_path: Path) -> None:
    path = tmp_path / "r.spool"
    first = Spool(path, CREATE)
    first.append(batch(1))
    first.append(Record(UPDATE, b'{"status":"failed"}'))
    first.close()
    with path.open("ab") as file:
        file.write(b'P 7 {"points":[')  # the process died mid-write
    adopted = Spool(path, CREATE)
    assert (adopted.pending, adopted.pending_points) == (2, 1)
    assert adopted.peek() == batch(1)
    adopted.append(batch(3))
    kinds = [(r.kind, r.points) for r in iter_records(path)]
    assert kinds == [(b"C", 0), (POINTS, 1), (UPDATE, 0), (POINTS, 3)]


def test_a_file_that_is_not_a_spool_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.txt"
    path.write_text("hello\n")
    with pytest.raises(SpoolFormatError):
        list(iter_records(path))


def test_spool_names_are_stable_safe_and_distinct(tmp_path: Path) -> None:
    a = spool_path(tmp_path, "sweep 3/run:7")
    assert a == spool_path(tmp_path, "sweep 3/run:7") and a.parent == tmp_path
    assert "/" not in a.name[:-6] and a.name.startswith("sweep_3_run_7-")
    assert a != spool_path(tmp_path, "sweep 3_run:7")
