"""Rung decisions of an early-stopping sweep, and what a sweep reports about its search.

A run is judged at a rung once its stored points reach the rung's step (its heartbeat
after the trainer flushed there), on the objective's summary of the points up to the
rung. The decision is taken under the sweep row's lock (FOR UPDATE on PostgreSQL; SQLite
serializes writers) and stored in `sweep_rungs`, whose primary key (sweep, job, step)
makes a second decision about the same rung impossible, whichever replica tries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from momentum.contract import EarlyStop, EarlyStopped, Objective, Rung, SweepBest
from momentum.contract.metrics import MAX_STEP
from service.models import Job, Series, Sweep, SweepRung, SweepTrial, utcnow
from service.search import rules
from service.storage.entry_points import declared_total
from service.storage.metrics import read_columns
from service.storage.search import locked_sweep


@dataclass(frozen=True)
class StopRule:
    early_stop: EarlyStop
    key: str
    mode: rules.Mode
    summary: str


def stop_rule(sweep: Sweep) -> StopRule | None:
    if not sweep.early_stop:
        return None
    rule = EarlyStop.model_validate(sweep.early_stop)
    objective = Objective.model_validate(sweep.objective or {})
    return StopRule(rule, rule.key or objective.key, rule.mode or objective.mode, objective.summary)


def _last_step(session: Session, job: Job) -> int:
    """The job's last step, as far as it is known: rungs at or past it need no verdict."""
    steps = job.config.get("steps") if job.entry_point is None else None
    total = steps if isinstance(steps, int) else job.progress_total
    if total is None and job.entry_point is not None:
        total = declared_total(session, job)
    return total if total is not None else MAX_STEP


def check_steps(session: Session, job: Job) -> list[int]:
    """The rung steps of the job's sweep below its last step (none without early_stop)."""
    sweep = session.get(Sweep, job.sweep_id) if job.sweep_id is not None else None
    rule = stop_rule(sweep) if sweep is not None else None
    return rule.early_stop.rungs(_last_step(session, job)) if rule is not None else []


def judge(session: Session, job: Job, *, ended: bool = False) -> EarlyStopped | None:
    """Decide every rung the job's stored points reached and no decision covers yet; the
    first stop is returned. A job that `ended` records the values it reached, unjudged."""
    sweep = session.get(Sweep, job.sweep_id) if job.sweep_id is not None else None
    rule = stop_rule(sweep) if sweep is not None else None
    if sweep is None or rule is None or job.run_id is None:
        return None
    found = session.execute(
        select(Series.id, Series.last_step).where(
            Series.run_id == job.run_id, Series.key == rule.key
        )
    ).one_or_none()
    if found is None or found.last_step is None:
        return None
    due = [step for step in check_steps(session, job) if step <= found.last_step]
    if not due:
        return None
    if not ended:
        locked_sweep(session, sweep.id)  # one decision at a time per sweep
    decided = set(
        session.scalars(
            select(SweepRung.step).where(SweepRung.sweep_id == sweep.id, SweepRung.job_id == job.id)
        )
    )
    due = [step for step in due if step not in decided]
    if not due:
        return None
    records = read_columns(session, found.id, 0, max(due))
    for step in due:
        value = rules.rung_value(records["step"], records["value"], step, rule.summary, rule.mode)
        if value is None:
            continue
        verdict = _decide(session, sweep.id, job.id, rule, step, value)
        stop = verdict.stop and not ended
        _record(session, sweep.id, job.id, step, value, verdict, stop)
        if stop:
            assert verdict.reason is not None
            return EarlyStopped(step=step, rule=rule.early_stop.rule, reason=verdict.reason)
    return None


def _others(session: Session, sweep_id: int, job_id: int, step: int) -> list[float]:
    values = session.scalars(
        select(SweepRung.value).where(
            SweepRung.sweep_id == sweep_id, SweepRung.step == step, SweepRung.job_id != job_id
        )
    )
    return [math.nan if value is None else value for value in values]


def _decide(
    session: Session, sweep_id: int, job_id: int, rule: StopRule, step: int, value: float
) -> rules.Verdict:
    others = _others(session, sweep_id, job_id, step)
    if rule.early_stop.rule == "asha":
        factor = rule.early_stop.reduction_factor
        return rules.asha(rule.key, value, others, step, factor, rule.mode)
    earlier = session.scalars(
        select(SweepRung.value).where(SweepRung.sweep_id == sweep_id, SweepRung.job_id == job_id)
    )
    mine = [v for v in [*earlier, value] if v is not None and not math.isnan(v)]
    best = (min(mine) if rule.mode == "min" else max(mine)) if mine else math.nan
    return rules.median(rule.key, best, others, step, rule.mode)


def _record(
    session: Session,
    sweep_id: int,
    job_id: int,
    step: int,
    value: float,
    verdict: rules.Verdict,
    stopped: bool,
) -> None:
    session.add(
        SweepRung(
            sweep_id=sweep_id,
            job_id=job_id,
            step=step,
            value=None if math.isnan(value) else value,
            cutoff=verdict.cutoff
            if verdict.cutoff is None or math.isfinite(verdict.cutoff)
            else None,
            reached=verdict.reached,
            stopped=stopped,
            decided_at=utcnow(),
        )
    )
    session.flush()


def sweep_rungs(session: Session, sweep_id: int) -> list[Rung]:
    """Each rung: how many runs reached it, how many stopped there, the latest cutoff."""
    rows = session.execute(
        select(SweepRung.step, SweepRung.cutoff, SweepRung.stopped)
        .where(SweepRung.sweep_id == sweep_id)
        .order_by(SweepRung.step, SweepRung.decided_at)
    ).all()
    out: dict[int, Rung] = {}
    for step, cutoff, stopped in rows:
        rung = out.setdefault(step, Rung(step=step, cutoff=None, reached=0, stopped=0))
        rung.reached += 1
        rung.stopped += int(stopped)
        rung.cutoff = cutoff if cutoff is not None else rung.cutoff
    return list(out.values())


def steps_spent(session: Session, sweep_id: int) -> int:
    """The steps its runs logged: each run's last logged step + 1 (steps count from 0)."""
    run_ids = select(Job.run_id).where(Job.sweep_id == sweep_id).scalar_subquery()
    last = (
        select(func.max(Series.last_step).label("last"))
        .where(Series.run_id.in_(run_ids))
        .group_by(Series.run_id)
        .subquery()
    )
    total = session.scalar(select(func.sum(last.c.last + 1)))
    return int(total or 0)


def best_trial(session: Session, sweep: Sweep) -> SweepBest | None:
    """The complete trial with the best objective (ties: the earliest)."""
    mode = Objective.model_validate(sweep.objective or {}).mode
    order = SweepTrial.value.asc() if mode == "min" else SweepTrial.value.desc()
    trial = session.scalars(
        select(SweepTrial)
        .where(
            SweepTrial.sweep_id == sweep.id,
            SweepTrial.state == "complete",
            SweepTrial.value.is_not(None),
        )
        .order_by(order, SweepTrial.number)
        .limit(1)
    ).one_or_none()
    if trial is None or not trial.job_ids or trial.value is None:
        return None
    job = session.get(Job, trial.job_ids[0])
    run_id = job.run_id if job is not None else None
    return SweepBest(
        job_id=trial.job_ids[0], run_id=run_id, params=trial.params, objective=trial.value
    )
