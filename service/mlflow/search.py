"""MLflow's search grammar: `params.momentum = '0.9' AND metrics.loss < 0.5`, and
`order_by` items such as `metrics.loss DESC`, evaluated over runs already loaded.

Clauses join with AND; comparators `=`, `!=`, `<`, `<=`, `>`, `>=`, `LIKE`, `ILIKE`,
`IN`, `NOT IN`. Metrics compare their latest value as numbers; params, tags and text
attributes compare as text, except `<`/`>` between two numbers (`params.lr < '0.1'`).
A run without the named metric, param or tag matches no clause on it. A filter is at
most MAX_FILTER_LENGTH characters, and LIKE matches in linear time (service/mlflow/like.py).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from service.mlflow.errors import invalid
from service.mlflow.like import like

KINDS = {
    "metric": "metric",
    "metrics": "metric",
    "param": "param",
    "params": "param",
    "parameter": "param",
    "parameters": "param",
    "tag": "tag",
    "tags": "tag",
    "attribute": "attribute",
    "attributes": "attribute",
    "attr": "attribute",
    "run": "attribute",
}
_ENTITY = re.compile(
    r"\s*(?:(?P<kind>[A-Za-z]+)\.)?(?:`(?P<tick>[^`]+)`|\"(?P<dq>[^\"]+)\"|(?P<bare>[\w./:\-]+))"
)
_OPERATOR = re.compile(r"\s*(!=|<=|>=|=|<|>|NOT\s+IN\b|IN\b|ILIKE\b|LIKE\b)", re.IGNORECASE)
_STRING = re.compile(r"\s*(?:'((?:[^']|'')*)'|\"((?:[^\"]|\"\")*)\")")
_NUMBER = re.compile(
    # `\d+(?:\.\d*)?`, not `\d+\.?\d*`: two runs of digits back to back backtrack in
    # quadratic time on a long number that ends badly (4,096 digits took 0.5 s).
    r"\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?inf(?:inity)?|nan)\b",
    re.I,
)
_AND = re.compile(r"\s+AND\s+", re.IGNORECASE)
# Far above any filter written by hand or by MLflow's clients; it bounds the work of
# parsing a filter and of compiling its LIKE patterns.
MAX_FILTER_LENGTH = 4096
# The largest page of experiments or runs a search answers.
SEARCH_MAX_RESULTS = 50_000


@dataclass(frozen=True)
class Clause:
    kind: str
    key: str
    op: str
    value: Any


Lookup = Callable[[str, str], Any]


class _Parser:
    def __init__(self, text: str) -> None:
        self.text, self.at = text, 0

    def take(self, pattern: re.Pattern[str]) -> re.Match[str] | None:
        found = pattern.match(self.text, self.at)
        if found:
            self.at = found.end()
        return found

    def fail(self, what: str) -> Exception:
        return invalid(f"Invalid filter {self.text!r}: expected {what} at position {self.at}")

    def entity(self) -> tuple[str, str]:
        found = self.take(_ENTITY)
        if not found:
            raise self.fail("metrics.<key>, params.<key>, tags.<key> or an attribute")
        key = found["tick"] or found["dq"] or found["bare"]
        if found["kind"] is None:
            return "attribute", key
        kind = KINDS.get(found["kind"].lower())
        if kind is None:
            raise self.fail(f"a known entity type, not {found['kind']!r}")
        return kind, key

    def literal(self) -> Any:
        text = self.take(_STRING)
        if text:
            single, double = text[1], text[2]
            return single.replace("''", "'") if single is not None else double.replace('""', '"')
        number = self.take(_NUMBER)
        if number:
            return float(number[1])
        raise self.fail("a quoted string or a number")

    def values(self) -> list[Any]:
        if not self.take(re.compile(r"\s*\(")):
            raise self.fail("'(' after IN")
        items = [self.literal()]
        while self.take(re.compile(r"\s*,")):
            items.append(self.literal())
        if not self.take(re.compile(r"\s*\)")):
            raise self.fail("')'")
        return items

    def clause(self) -> Clause:
        kind, key = self.entity()
        found = self.take(_OPERATOR)
        if not found:
            raise self.fail("a comparator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN)")
        op = " ".join(found[1].upper().split())
        value = self.values() if op in ("IN", "NOT IN") else self.literal()
        return Clause(kind, key, op, value)

    def clauses(self) -> list[Clause]:
        out = [self.clause()]
        while self.take(_AND):
            out.append(self.clause())
        if self.text[self.at :].strip():
            raise self.fail("AND or the end")
        return out


def parse_filter(text: str | None) -> list[Clause]:
    if text and len(text) > MAX_FILTER_LENGTH:
        raise invalid(
            f"The filter is {len(text)} characters long; at most {MAX_FILTER_LENGTH} are allowed"
        )
    return _Parser(text).clauses() if text and text.strip() else []


def _as_number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


_ORDERED = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _holds(clause: Clause, actual: Any) -> bool:
    if actual is None:
        return False
    op, wanted = clause.op, clause.value
    if op in ("IN", "NOT IN"):
        inside = str(actual) in {str(item) for item in wanted}
        return inside if op == "IN" else not inside
    if op in ("LIKE", "ILIKE"):
        return like(str(wanted), str(actual), ignore_case=op == "ILIKE")
    if isinstance(actual, float | int):
        number = _as_number(wanted)
        if number is None:
            raise invalid(f"{clause.kind} {clause.key!r} compares with a number, not {wanted!r}")
        if math.isnan(actual):
            return op == "!=" or (op == "=" and math.isnan(number))
        return bool(_ORDERED[op](actual, number))
    left, right = _as_number(actual), _as_number(wanted)
    if op not in ("=", "!=") and left is not None and right is not None:
        return bool(_ORDERED[op](left, right))
    return bool(_ORDERED[op](str(actual), str(wanted)))


def matches(clauses: Sequence[Clause], lookup: Lookup) -> bool:
    return all(_holds(clause, lookup(clause.kind, clause.key)) for clause in clauses)


def parse_order_by(items: Sequence[str]) -> list[tuple[str, str, bool]]:
    """(kind, key, descending) for each `order_by` item."""
    out = []
    for item in items:
        parser = _Parser(item)
        kind, key = parser.entity()
        direction = parser.text[parser.at :].strip().upper() or "ASC"
        if direction not in ("ASC", "DESC"):
            raise invalid(f"Invalid order_by {item!r}: ends in ASC or DESC, not {direction!r}")
        out.append((kind, key, direction == "DESC"))
    return out


def ordered(
    records: list[Any],
    order: Sequence[tuple[str, str, bool]],
    lookup: Callable[[Any, str, str], Any],
) -> list[Any]:
    """Sorted by each order item in turn; a missing value sorts last either way."""
    for kind, key, descending in reversed(order):
        present = [r for r in records if lookup(r, kind, key) is not None]
        absent = [r for r in records if lookup(r, kind, key) is None]
        present.sort(key=lambda r: _sort_key(lookup(r, kind, key)), reverse=descending)
        records = present + absent
    return records


def _sort_key(value: Any) -> tuple[int, Any]:
    if isinstance(value, int | float):
        return (0, -math.inf if math.isnan(value) else value)
    return (1, str(value))
