"""A small server-sent-events reader for tests: the stream as a real client sees it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class Received:
    id: int | None
    kind: str
    data: dict[str, Any]


def parse(lines: Iterator[str]) -> Iterator[Received]:
    """Events from SSE lines (comments and `retry:` skipped)."""
    fields: dict[str, str] = {}
    for line in lines:
        if line == "":
            if "data" in fields:
                event_id = fields.get("id")
                yield Received(
                    int(event_id) if event_id else None,
                    fields.get("event", "message"),
                    json.loads(fields["data"]),
                )
            fields = {}
            continue
        name, _, value = line.partition(":")
        if name:
            fields[name] = value.removeprefix(" ")


class EventStream:
    """An open GET /events; `until` collects events until a condition holds."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.events = parse(response.iter_lines())
        self.seen: list[Received] = []

    def until(self, done: Callable[[list[Received]], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not done(self.seen):
            if time.monotonic() > deadline:
                raise AssertionError(f"stream condition not met in {timeout} s: {self.seen}")
            self.seen.append(next(self.events))


def kinds(events: list[Received], kind: str) -> list[Received]:
    return [event for event in events if event.kind == kind]
