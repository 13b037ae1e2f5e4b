"""Comparisons as the API answers them: read curves array-at-a-time, run the analysis
(`service.analysis`), encode for the wire (non-finite values as the contract's strings).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from momentum.contract import (
    BestSetting,
    CompareSummary,
    GroupComparison,
    GroupCurve,
    GroupSummary,
    RunSummary,
    Stat,
)
from momentum.contract.metrics import MAX_STEP, MIN_STEP
from momentum.contract.values import EncodedValue, encode_value
from service.analysis import groups as group_math
from service.analysis.smoothing import debiased_ema
from service.analysis.summary import CurveSummary, Mode, rank_key, speedup, summarize
from service.domain_errors import InvalidQuery, NotFound
from service.downsample import downsample_indices, wire_values
from service.indexed_params import INDEXED_PARAMS
from service.models import Run
from service.storage import compare as compare_store
from service.storage.blocks import RECORD_DTYPE
from service.storage.metrics import read_columns, read_downsampled, read_window

INTERPOLATION = (
    "Common grid: the union of the group's logged steps, thinned evenly to max_points. "
    "Each run is read there linearly in step between its neighbouring logged points "
    "(exactly where it logged the step), only inside its own first..last step, and only "
    "where that value is finite; `count` is the number of runs behind each step."
)
_EMPTY = np.empty(0, dtype=RECORD_DTYPE)


def load_runs(session: Session, run_ids: Sequence[int]) -> list[Run]:
    """The runs in the order asked; NotFound naming every id that does not exist."""
    found = compare_store.load_runs(session, run_ids)
    missing = [run_id for run_id in run_ids if run_id not in found]
    if missing:
        raise NotFound("run", *missing)
    return [found[run_id] for run_id in run_ids]


def read_curves(
    session: Session, runs: Sequence[Run], key: str, start: int = MIN_STEP, end: int = MAX_STEP
) -> dict[int, np.ndarray]:
    """run id -> records (step, value, wall_time) of `key`; empty if the run lacks it."""
    ids = compare_store.series_ids(session, [run.id for run in runs], [key])
    return {
        run.id: read_columns(session, ids[run.id, key], start, end)
        if (run.id, key) in ids
        else _EMPTY
        for run in runs
    }


@dataclass(frozen=True)
class CurveRequest:
    keys: list[str]
    x: str = "step"
    smoothing: float | None = None
    max_points: int = 10_000
    start_step: int = MIN_STEP
    end_step: int = MAX_STEP


@dataclass(frozen=True)
class _Curve:
    shown: np.ndarray  # records (step, value, wall_time) the response carries
    total: int  # points in the step window
    smoothed: np.ndarray | None = None  # the EMA at the shown steps
    first_wall: float | None = None  # wall_time of the series' first point (x=wall_time)


def compare_curves(session: Session, runs: Sequence[Run], ask: CurveRequest) -> dict[str, Any]:
    """Each run's own step grid; downsampled from the zoom summaries, or (smoothing)
    smoothed at full resolution and then downsampled."""
    ids = compare_store.series_ids(session, [run.id for run in runs], ask.keys)
    wanted = [(run.id, key) for run in runs for key in ask.keys if (run.id, key) in ids]
    if ask.smoothing is not None:
        curves = {pair: _smoothed_curve(session, ids[pair], ask, ask.smoothing) for pair in wanted}
    else:
        read = read_downsampled(
            session, [ids[pair] for pair in wanted], ask.start_step, ask.end_step, ask.max_points
        )
        heads = _first_walls(session, [ids[pair] for pair in wanted], ask)
        curves = {
            pair: _Curve(shown, total, None, head)
            for pair, (shown, total), head in zip(wanted, read, heads, strict=True)
        }
    series = []
    for run in runs:
        mine = [curves.get((run.id, key), _Curve(_EMPTY, 0)) for key in ask.keys]
        firsts = [c.first_wall for c in mine if c.first_wall is not None]
        origin = float(min(firsts)) if ask.x == "wall_time" and firsts else 0.0
        series += [_series(run, k, c, origin) for k, c in zip(ask.keys, mine, strict=True)]
    return {"x": ask.x, "smoothing": ask.smoothing, "series": series}


def _first_walls(session: Session, series_ids: list[int], ask: CurveRequest) -> list[float | None]:
    """With x=wall_time, each series' first wall_time (time counts from there whatever
    the zoom), if its first point is inside end_step."""
    if ask.x != "wall_time":
        return [None] * len(series_ids)
    heads = [read_window(session, series_id, MIN_STEP, 1)[0][:1] for series_id in series_ids]
    return [
        float(head["wall_time"][0]) if len(head) and head["step"][0] <= ask.end_step else None
        for head in heads
    ]


def _smoothed_curve(session: Session, series_id: int, ask: CurveRequest, weight: float) -> _Curve:
    """Smoothing starts at the first point, so it reads from step 0 whatever the zoom:
    the smoothed curve must not change with start_step."""
    records = read_columns(session, series_id, MIN_STEP, ask.end_step)
    first_wall = float(records["wall_time"][0]) if len(records) else None
    smoothed = debiased_ema(records["value"], weight)
    if ask.start_step > MIN_STEP and len(records) and records["step"][0] < ask.start_step:
        shown = np.flatnonzero(records["step"] >= ask.start_step)
        records, smoothed = records[shown], smoothed[shown]
    total = len(records)
    if total > ask.max_points:
        keep = downsample_indices(records["value"], ask.max_points)
        records, smoothed = records[keep], smoothed[keep]
    return _Curve(records, total, smoothed, first_wall)


def _series(run: Run, key: str, curve: _Curve, origin: float) -> dict[str, Any]:
    walls = curve.shown["wall_time"]
    out: dict[str, Any] = {
        "run_id": run.id,
        "run_name": run.name,
        "key": key,
        "steps": np.ascontiguousarray(curve.shown["step"]),
        "wall_times": walls - origin if origin else np.ascontiguousarray(walls),
        "values": wire_values(curve.shown["value"]),
        "total": curve.total,
        "downsampled": len(curve.shown) < curve.total,
    }
    if curve.smoothed is not None:
        out["smoothed"] = wire_values(curve.smoothed)
    return out


def _encoded(value: float | None) -> EncodedValue | None:
    return None if value is None else encode_value(value)


_COUNTS = ("points", "first_step", "last_step", "best_step", "steps_to_threshold")
_VALUES = ("final", "best", "tail_mean", "auc")  # floats that may be NaN or ±Infinity


def _run_summary(run: Run, summary: CurveSummary, base_steps: int | None) -> RunSummary:
    fields: dict[str, Any] = {name: getattr(summary, name) for name in _COUNTS}
    fields.update({name: _encoded(getattr(summary, name)) for name in _VALUES})
    return RunSummary.model_validate(
        {
            **fields,
            "run_id": run.id,
            "run_name": run.name,
            "diverged": run.diverged or summary.non_finite,
            "speedup": speedup(base_steps, summary.steps_to_threshold),
        }
    )


@dataclass(frozen=True)
class SummaryRequest:
    key: str
    mode: Mode = "min"
    threshold: float | None = None
    baseline: int | None = None  # the run speedups are relative to


def summarize_runs(session: Session, runs: Sequence[Run], ask: SummaryRequest) -> CompareSummary:
    curves = read_curves(session, runs, ask.key)
    summaries = {
        run.id: summarize(curves[run.id]["step"], curves[run.id]["value"], ask.mode, ask.threshold)
        for run in runs
    }
    baseline = summaries[ask.baseline] if ask.baseline is not None else None
    base_steps = baseline.steps_to_threshold if baseline is not None else None
    items = [_run_summary(run, summaries[run.id], base_steps) for run in runs]
    diverged = {item.run_id: item.diverged for item in items}
    ranking = sorted(
        (run.id for run in runs),
        key=lambda run_id: (*rank_key(summaries[run_id], diverged[run_id], ask.mode), run_id),
    )
    criterion = _ranking_criterion(ask.key, ask.mode, ask.threshold)
    return CompareSummary.model_validate(
        {**asdict(ask), "runs": items, "ranking": ranking, "criterion": criterion}
    )


def _ranking_criterion(key: str, mode: Mode, threshold: float | None) -> str:
    better = "lower" if mode == "min" else "higher"
    tail = f"then {better} tail_mean of {key} (the last 10 % of steps)"
    if threshold is None:
        return f"runs that did not diverge first, {tail}"
    compare = "<=" if mode == "min" else ">="
    return (
        f"runs that did not diverge first, then those reaching {key} {compare} "
        f"{threshold:g} in the fewest steps, {tail}"
    )


def param_value(run: Run, by: str) -> Any:
    """The run's value of a parameter: an indexed column, else a key of its params."""
    if by in INDEXED_PARAMS and getattr(run, by) is not None:
        return getattr(run, by)
    return run.params.get(by)


def group_key(value: Any) -> str:
    # 0 and 0.0 (an int in one run's params, a float in another's) are one setting; an
    # integer stays exact: seeds 2**63 - 1 and 2**63 - 2 are one float but two settings.
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(value)
    return json.dumps(value, sort_keys=True)


def unknown_parameter(runs: Sequence[Run], by: str) -> InvalidQuery:
    """`by` names a parameter no run has: the 422 lists those the runs do have."""
    known = sorted({*INDEXED_PARAMS, *(name for run in runs for name in run.params)})
    message = f"by: no run has a parameter {by!r}; known here: {', '.join(known)}"
    return InvalidQuery("by", "unknown parameter", message)


def _floats(array: np.ndarray) -> list[float | None]:
    return [v if math.isfinite(v) else None for v in array.tolist()]


def _stat(stat: group_math.Stat) -> Stat:
    return Stat(mean=stat.mean, std=stat.std, n=stat.n)


def _group_summary(group: group_math.Group) -> GroupSummary:
    curve = group.curve
    return GroupSummary(
        value=group.value,
        run_ids=group.run_ids,
        runs=len(group.members),
        diverged=group.diverged,
        final=_stat(group.final),
        steps_to_threshold=_stat(group.steps_to_threshold),
        curve=GroupCurve(
            steps=curve.steps.tolist(),
            mean=_floats(curve.mean),
            std=_floats(curve.std),
            ci_low=_floats(curve.ci_low),
            ci_high=_floats(curve.ci_high),
            count=curve.count.tolist(),
        ),
    )


@dataclass(frozen=True)
class GroupRequest:
    key: str
    by: str
    mode: Mode = "min"
    threshold: float | None = None
    max_points: int = 1000


def group_runs(session: Session, runs: Sequence[Run], ask: GroupRequest) -> GroupComparison:
    values = {run.id: param_value(run, ask.by) for run in runs}
    if runs and all(value is None for value in values.values()):
        raise unknown_parameter(runs, ask.by)
    curves = read_curves(session, runs, ask.key)
    members: dict[str, list[group_math.Member]] = {}
    shown: dict[str, Any] = {}
    for run in runs:
        steps, series_values = curves[run.id]["step"], curves[run.id]["value"]
        summary = summarize(steps, series_values, ask.mode, ask.threshold)
        member = group_math.Member(
            run.id, steps, series_values, run.diverged or summary.non_finite, summary
        )
        value_key = group_key(values[run.id])
        members.setdefault(value_key, []).append(member)
        shown.setdefault(value_key, values[run.id])
    groups = [
        group_math.build_group(shown[k], members[k], ask.max_points)
        for k in sorted(members, key=lambda k: group_math.value_order(shown[k]))
    ]
    best = group_math.best_group(groups, ask.mode, ask.threshold, ask.key)
    return GroupComparison(
        key=ask.key,
        by=ask.by,
        mode=ask.mode,
        threshold=ask.threshold,
        groups=[_group_summary(group) for group in groups],
        best=None if best is None else BestSetting(value=best[0].value, criterion=best[1]),
        interpolation=INTERPOLATION,
    )
