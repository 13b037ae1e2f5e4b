"""SQL's `LIKE` for MLflow's search filters, in time linear in the value's length.

`%` stands for any run of characters, `_` for exactly one, every other character for
itself (MLflow's filters have no escape character). The obvious translation, a regular
expression with one `.*` per `%`, backtracks combinatorially and holds the GIL while it
does: 46 `%` against one run's status took 25 s, and every other request waited.

Here runs of `%` collapse, and the `%`s cut the pattern into segments. The first
segment must sit at the value's start and the last at its end; each one between is
taken at its earliest place after the one before, which is exact, since only `%`
(anything) stands between two segments. A segment of plain text is found with
`str.find`; one with `_` with a bit-parallel scan (shift-and) that reads each character
of the value once, in a Python loop that hands the GIL to other requests as it goes.
"""

from __future__ import annotations

import functools


class _Segment:
    """A piece of the pattern without `%`: characters that match themselves, and `_`."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.length = len(text)
        self.wild = "_" in text
        # Bit i of a character's mask: position i of the segment matches that character.
        self.any_char = sum(1 << i for i, ch in enumerate(text) if ch == "_")
        self.masks = {ch: self.any_char for ch in text if ch != "_"}
        for i, ch in enumerate(text):
            if ch != "_":
                self.masks[ch] |= 1 << i

    def matches_at(self, value: str, start: int) -> bool:
        if start < 0 or start + self.length > len(value):
            return False
        if not self.wild:
            return value.startswith(self.text, start)
        window = value[start : start + self.length]
        return all(want in ("_", got) for want, got in zip(self.text, window, strict=True))

    def find(self, value: str, start: int, stop: int) -> int:
        """Where the segment first occurs wholly inside value[start:stop], or -1."""
        if not self.wild:
            return value.find(self.text, start, stop)
        if not self.masks:  # only `_`: any place with room
            return start if start + self.length <= stop else -1
        # Bit i of `ends_here`: the segment's first i+1 characters end at value[end].
        ends_here, whole = 0, 1 << (self.length - 1)
        any_char, masks = self.any_char, self.masks
        for end in range(start, stop):
            ends_here = ((ends_here << 1) | 1) & masks.get(value[end], any_char)
            if ends_here & whole:
                return end - self.length + 1
        return -1


class LikePattern:
    """A compiled `LIKE` (or, with `ignore_case`, `ILIKE`) pattern."""

    def __init__(self, pattern: str, ignore_case: bool = False) -> None:
        self.ignore_case = ignore_case
        parts = (pattern.lower() if ignore_case else pattern).split("%")
        self.head = _Segment(parts[0])
        self.tail = _Segment(parts[-1]) if len(parts) > 1 else None
        # Repeated `%` leave empty parts between them: `%%` is `%`.
        self.middle = [_Segment(part) for part in parts[1:-1] if part]

    def matches(self, value: str) -> bool:
        if self.ignore_case:
            value = value.lower()
        if self.tail is None:  # no `%`: the whole value
            return len(value) == self.head.length and self.head.matches_at(value, 0)
        if not self.head.matches_at(value, 0):
            return False
        start, tail_start = self.head.length, len(value) - self.tail.length
        for segment in self.middle:
            found = segment.find(value, start, tail_start)
            if found < 0:
                return False
            start = found + segment.length
        return start <= tail_start and self.tail.matches_at(value, tail_start)


@functools.lru_cache(maxsize=256)
def compiled(pattern: str, ignore_case: bool) -> LikePattern:
    """One compiled pattern per filter, not one per run it is tested against."""
    return LikePattern(pattern, ignore_case)


def like(pattern: str, value: str, ignore_case: bool = False) -> bool:
    return compiled(pattern, ignore_case).matches(value)
