"""Trials of a sweep: creating jobs while slots and budget allow, and settling outcomes.

A sweep's state is in our tables only: `sweeps` (its settings, `searching` while it may
still create jobs), `sweep_trials` (each sampled point or grid combination, its jobs and
its objective) and the jobs themselves. `top_up` runs under the sweep row's lock (FOR
UPDATE on PostgreSQL; SQLite's BEGIN IMMEDIATE serializes writers), from the claim
transaction and the transaction that ends a job: so a restarted service or a second
replica continues the sweep, and no two create the same trial. Callers on the hot path
pass `skip_locked`: a sweep another transaction is topping up is left to it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from momentum.contract import Objective, Status, TrainingConfig
from momentum.contract.metrics import MAX_STEP, MIN_STEP
from service.analysis.summary import summarize
from service.entry_point_params import ParamsRefused, job_params
from service.models import Job, Series, Sweep, SweepRung, SweepTrial, utcnow
from service.search.history import PastTrial
from service.storage import entry_points as entry_store
from service.storage.jobs import EntryPointWork, JobSpec, Work, create_job
from service.storage.metrics import read_columns

if TYPE_CHECKING:
    from service.search.sampler import Sampler

ACTIVE = (Status.queued.value, Status.running.value)
NAME_LIMIT = 250
# Sampled points refused by validation, per top-up and in all: past these the sweep
# gives up rather than sample forever from a space whose points cannot run.
RETRIES_PER_TOP_UP = 20
MAX_REFUSED_POINTS = 200


def locked_sweep(session: Session, sweep_id: int, *, skip_locked: bool = False) -> Sweep | None:
    """The sweep row, locked for this transaction; None if gone (or locked, with skip)."""
    statement = (
        select(Sweep)
        .where(Sweep.id == sweep_id)
        .with_for_update(skip_locked=skip_locked)
        .execution_options(populate_existing=True)
    )
    return session.scalars(statement).one_or_none()


def copies(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """The grid's combinations in order: what each sampled point is crossed with."""
    names = list(grid)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*grid.values())]


def build_work(session: Session, sweep: Sweep, values: dict[str, Any]) -> Work:
    """A job's work for `values` over the sweep's base; ValueError if they do not fit."""
    merged = {**sweep.base, **values}
    if sweep.entry_point is None:
        return TrainingConfig.model_validate(merged)
    entry = entry_store.current(session, sweep.entry_point)
    if entry is None:
        raise ValueError(f"entry point {sweep.entry_point!r} is no longer registered")
    params = job_params(entry_store.definition(entry), merged)
    return EntryPointWork(entry.name, entry.digest, params)


def _shown(values: dict[str, Any], sampled: bool) -> str:
    """`momentum=0.9 seed=1`; a sampled float with four significant digits."""
    return " ".join(
        f"{name}={value:.4g}" if sampled and isinstance(value, float) else f"{name}={value}"
        for name, value in values.items()
    )


def create_trial_jobs(
    session: Session, sweep: Sweep, number: int, works: Sequence[tuple[dict[str, Any], Work]]
) -> list[int]:
    """One queued job per (shown values, work), named after the sweep, trial and values."""
    defaults = sweep.job_defaults or {}
    ids = []
    for shown, work in works:
        if isinstance(work, EntryPointWork):  # as checked: a float param's 0 reads 0.0
            shown = {name: work.params.get(name, value) for name, value in shown.items()}
        sampled = sweep.strategy != "grid"
        label = f"#{number} {_shown(shown, True)}" if sampled else _shown(shown, False)
        spec = JobSpec(
            name=f"{sweep.name} {label}".strip()[:NAME_LIMIT],
            project=defaults.get("project", "default"),
            tags=defaults.get("tags", {}),
            max_attempts=defaults.get("max_attempts", 3),
            sweep_id=sweep.id,
        )
        ids.append(create_job(session, work, spec).id)
    return ids


def _job_counts(session: Session, sweep_id: int) -> tuple[int, int]:
    """(jobs created, jobs queued or running)."""
    active = func.count().filter(Job.status.in_(ACTIVE))
    created, running = session.execute(
        select(func.count(), active).where(Job.sweep_id == sweep_id)
    ).one()
    return int(created or 0), int(running or 0)


def top_up(session: Session, sweep: Sweep) -> int:
    """Create trials while the budget and the slots allow; returns the jobs created.
    The caller holds the sweep row's lock."""
    settle(session, sweep)
    if not sweep.searching or sweep.max_jobs is None:
        return 0
    created, active = _job_counts(session, sweep.id)
    slots = sweep.parallelism - active if sweep.parallelism is not None else sweep.max_jobs
    room = min(slots, sweep.max_jobs - created)
    made = _grid_top_up(session, sweep, created, room) if sweep.strategy == "grid" else 0
    if sweep.strategy != "grid":
        made = _search_top_up(session, sweep, room)
    if created + made >= sweep.max_jobs:
        sweep.searching = False
    session.flush()
    return made


def _grid_top_up(session: Session, sweep: Sweep, created: int, room: int) -> int:
    """The next `room` combinations in grid order (the n-th job is combination n)."""
    made = 0
    for number, picked in enumerate(copies(sweep.grid)[created : created + max(room, 0)]):
        number += created
        try:
            work = build_work(session, sweep, picked)
        except (ValidationError, ValueError) as exc:  # a re-registered entry point
            sweep.searching = False
            _add_trial(session, sweep, number, picked, [], error=str(exc))
            break
        _add_trial(
            session,
            sweep,
            number,
            picked,
            create_trial_jobs(session, sweep, number, [(picked, work)]),
        )
        made += 1
    return made


def _add_trial(
    session: Session,
    sweep: Sweep,
    number: int,
    params: dict[str, Any],
    job_ids: list[int],
    error: str | None = None,
) -> None:
    state = "failed" if error is not None else "running"
    session.add(
        SweepTrial(
            sweep_id=sweep.id,
            number=number,
            params=params,
            state=state,
            job_ids=job_ids,
            error=error,
            created_at=utcnow(),
        )
    )
    session.flush()


def _search_top_up(session: Session, sweep: Sweep, room: int) -> int:
    """Ask the sampler for whole points (each crossed with the grid) while room lasts; a
    point refused by validation is told back as failed and costs no budget."""
    group = copies(sweep.grid)
    wanted = room // len(group)
    if wanted <= 0:
        return 0
    history = trial_history(session, sweep)
    refused = sum(1 for trial in history if trial.state == "failed" and trial.params)
    sampler = _sampler(sweep, history)
    made = 0
    for _ in range(wanted + RETRIES_PER_TOP_UP):
        if made == wanted or refused >= MAX_REFUSED_POINTS:
            break
        number, point = sampler.ask()
        try:
            works = [(picked, build_work(session, sweep, {**picked, **point})) for picked in group]
        except (ValidationError, ValueError, ParamsRefused) as exc:
            sampler.tell_failed(number)
            _add_trial(session, sweep, number, point, [], error=str(exc)[:2000])
            refused += 1
            continue
        shown = [({**point, **picked}, work) for picked, work in works]
        _add_trial(session, sweep, number, point, create_trial_jobs(session, sweep, number, shown))
        made += 1
    if refused >= MAX_REFUSED_POINTS:
        sweep.searching = False
    return made * len(group)


def _sampler(sweep: Sweep, history: list[PastTrial]) -> Sampler:
    # Imported here: Optuna costs the service's start time only when a search samples.
    from service.search.sampler import Sampler  # noqa: PLC0415

    objective = Objective.model_validate(sweep.objective or {})
    seed = sweep.search_seed if sweep.search_seed is not None else sweep.id
    budget = (sweep.max_jobs or 1) // len(copies(sweep.grid))
    assert sweep.space is not None
    return Sampler(sweep.strategy, sweep.space, objective.mode, seed, history, budget)


def trial_history(session: Session, sweep: Sweep) -> list[PastTrial]:
    """The sweep's trials as the sampler sees them; a pruned trial's intermediate values
    are its copies' mean value at each rung."""
    trials = session.scalars(
        select(SweepTrial).where(SweepTrial.sweep_id == sweep.id).order_by(SweepTrial.number)
    ).all()
    rungs: dict[int, dict[int, list[float]]] = {}
    for job_id, step, value in session.execute(
        select(SweepRung.job_id, SweepRung.step, SweepRung.value).where(
            SweepRung.sweep_id == sweep.id
        )
    ):
        if value is not None and math.isfinite(value):
            rungs.setdefault(job_id, {}).setdefault(step, []).append(value)
    out = []
    for trial in trials:
        steps: dict[int, list[float]] = {}
        for job_id in trial.job_ids:
            for step, values in rungs.get(job_id, {}).items():
                steps.setdefault(step, []).extend(values)
        middle = {step: sum(v) / len(v) for step, v in steps.items()}
        out.append(PastTrial(trial.number, trial.params, trial.state, trial.value, middle))
    return out


def settle(session: Session, sweep: Sweep) -> None:
    """Running trials whose jobs all ended get their state and objective."""
    running = session.scalars(
        select(SweepTrial).where(SweepTrial.sweep_id == sweep.id, SweepTrial.state == "running")
    ).all()
    if not running:
        return
    job_ids = [job_id for trial in running for job_id in trial.job_ids]
    jobs = {job.id: job for job in session.scalars(select(Job).where(Job.id.in_(job_ids)))}
    stopped = set(
        session.scalars(
            select(SweepRung.job_id).where(SweepRung.sweep_id == sweep.id, SweepRung.stopped)
        )
    )
    objective = Objective.model_validate(sweep.objective or {})
    for trial in running:
        ended = [jobs[i] for i in trial.job_ids if i in jobs]
        if len(ended) == len(trial.job_ids) and all(_ended(job) for job in ended):
            _settle_trial(session, trial, ended, stopped, objective)
    session.flush()


def _ended(job: Job) -> bool:
    return Status(job.status).is_terminal


def _settle_trial(
    session: Session, trial: SweepTrial, jobs: list[Job], stopped: set[int], objective: Objective
) -> None:
    values = [job_objective(session, job, objective) for job in jobs]
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if any(job.status != Status.succeeded for job in jobs) or len(finite) < len(jobs):
        trial.state = "failed"
    else:
        trial.state = "pruned" if any(job.id in stopped for job in jobs) else "complete"
    trial.value = sum(finite) / len(finite) if finite else None


def job_objective(session: Session, job: Job, objective: Objective) -> float | None:
    """The objective's summary of the job's whole curve; None without points."""
    if job.run_id is None:
        return None
    series_id = session.scalar(
        select(Series.id).where(Series.run_id == job.run_id, Series.key == objective.key)
    )
    if series_id is None:
        return None
    records = read_columns(session, series_id, MIN_STEP, MAX_STEP)
    curve = summarize(records["step"], records["value"], objective.mode)
    picked = {"final": curve.final, "best": curve.best, "tail_mean": curve.tail_mean}
    return picked[objective.summary]


def searching_sweeps(session: Session) -> Iterator[int]:
    yield from session.scalars(select(Sweep.id).where(Sweep.searching).order_by(Sweep.id))


def top_up_all(session: Session) -> None:
    """Every searching sweep not being topped up elsewhere (the claim's hook)."""
    for sweep_id in list(searching_sweeps(session)):
        sweep = locked_sweep(session, sweep_id, skip_locked=True)
        if sweep is not None:
            top_up(session, sweep)
