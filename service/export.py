"""Long-format CSV export: one line per point, streamed.

Columns: run_id, run_name, one `params.NAME` column per parameter any of the runs has
(nested objects flattened with dots, lists as JSON), key, step, value, wall_time.
Values use the contract's spellings (NaN, Infinity, -Infinity). Text cells (run names,
text params, keys) that a spreadsheet would run as a formula get a leading `'`; numbers,
including non-finite ones, are written as they are. The run table and the series ids
are read up front; the points are then read in windows of about WINDOW_POINTS points,
each in its own short transaction, and written as they come: memory holds one window,
never the export.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from momentum.contract.values import encode_value
from service.models import Run
from service.storage import compare as compare_store

WINDOW_POINTS = 50_000
# A spreadsheet reads a cell starting with one of these as a formula (CSV injection,
# OWASP): `=HYPERLINK(...)` in a run name would run on whoever opens the export.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def text_cell(text: str) -> str:
    """User text as a cell a spreadsheet shows as text, never evaluates."""
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def flatten(params: dict[str, Any], prefix: str = "params.") -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in params.items():
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{prefix}{name}."))
        elif isinstance(value, str):
            out[f"{prefix}{name}"] = text_cell(value)
        else:
            out[f"{prefix}{name}"] = json.dumps(value)
    return out


@dataclass(frozen=True)
class ExportPlan:
    header: list[str]
    # (csv prefix of the line: run_id, run_name, params..., key; series id), in order
    series: list[tuple[str, int]]


def _line(cells: Sequence[str]) -> str:
    buffer = io.StringIO()
    # The writer quotes a cell holding any character of its line terminator: with "\n"
    # alone, a bare "\r" in a name would go out unquoted and split the row for readers.
    csv.writer(buffer, lineterminator="\r\n").writerow(cells)
    return buffer.getvalue()[:-2] + "\n"


def plan(session: Session, runs: Sequence[Run], keys: Sequence[str] | None) -> ExportPlan:
    """What to export, looked up in the request's own (short) transaction."""
    flat = {run.id: flatten(run.params) for run in runs}
    columns = sorted({name for params in flat.values() for name in params})
    ids = compare_store.series_ids(session, [run.id for run in runs], keys)
    series = []
    for run in runs:
        run_keys = keys if keys is not None else sorted(k for r, k in ids if r == run.id)
        for key in run_keys:
            if (run.id, key) in ids:
                params = (flat[run.id].get(c, "") for c in columns)
                cells = [str(run.id), text_cell(run.name), *params, text_cell(key)]
                series.append((_line(cells)[:-1] + ",", ids[run.id, key]))
    header = ["run_id", "run_name", *columns, "key", "step", "value", "wall_time"]
    return ExportPlan(header=header, series=series)


def _value(value: float) -> str:
    encoded = encode_value(value)
    return encoded if isinstance(encoded, str) else repr(encoded)


def _lines(prefix: str, records: np.ndarray) -> str:
    steps = records["step"].tolist()
    values = records["value"].tolist()
    walls = records["wall_time"].tolist()
    return "".join(
        f"{prefix}{step},{_value(value)},{wall!r}\n"
        for step, value, wall in zip(steps, values, walls, strict=True)
    )


def stream_csv(
    sessions: sessionmaker[Session], export: ExportPlan, window_points: int = WINDOW_POINTS
) -> Iterator[str]:
    yield _line(export.header)
    for prefix, series_id in export.series:
        for records in compare_store.read_in_chunks(sessions, series_id, window_points):
            yield _lines(prefix, records)
