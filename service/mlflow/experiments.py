"""MLflow's experiments over our `experiments` table: an experiment is a project with a
stable integer id, a lifecycle stage (delete and restore, its runs with it), a name that
can change, tags and an artifact location (the routes are service/api/mlflow/experiments.py)."""

from __future__ import annotations

import functools
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from momentum.contract import RunCreate
from service.mlflow import search
from service.mlflow.entities import DEFAULT_EXPERIMENT_ID, row_id, to_ms
from service.mlflow.errors import (
    MlflowError,
    checked,
    invalid,
    missing,
    missing_value,
    required_string,
    stored_text,
)
from service.mlflow.schemas import ExperimentCreate, ExperimentSearch, KeyValue
from service.mlflow.values import page_offset, page_size, paged, shown
from service.models import ACTIVE, DELETED, Experiment, Run, utcnow

# view_type as MLflow's clients send it: the enum's name, or its number.
VIEW_TYPES = {"ACTIVE_ONLY": {ACTIVE}, "DELETED_ONLY": {DELETED}, "ALL": {ACTIVE, DELETED}}
VIEW_NUMBERS = {"1": "ACTIVE_ONLY", "2": "DELETED_ONLY", "3": "ALL"}
DEFAULT_ORDER = [("attribute", "creation_time", True)]


def stages_of(view_type: str | int | None) -> set[str]:
    """The lifecycle stages a view_type shows (ACTIVE_ONLY when none is given)."""
    name = VIEW_NUMBERS.get(str(view_type), str(view_type)) if view_type is not None else None
    if name is None or name == "":
        return VIEW_TYPES["ACTIVE_ONLY"]
    if name not in VIEW_TYPES:
        raise invalid(f"view_type {shown(name)!r}: one of {', '.join(VIEW_TYPES)}")
    return VIEW_TYPES[name]


def experiment_json(experiment: Experiment) -> dict[str, Any]:
    created = to_ms(experiment.created_at)
    return {
        "experiment_id": str(experiment.id),
        "name": experiment.name,
        "artifact_location": experiment.artifact_location or "",
        "lifecycle_stage": experiment.lifecycle_stage,
        "creation_time": created,
        "last_update_time": to_ms(experiment.updated_at) or created,
        "tags": [{"key": k, "value": v} for k, v in sorted((experiment.tags or {}).items())],
    }


def load_experiment(session: Session, raw: str | None, *, stage: str | None = None) -> Experiment:
    """The experiment with id `raw`; with `stage`, one in that stage (MLflow answers
    RESOURCE_DOES_NOT_EXIST for deleting a deleted experiment, restoring an active one)."""
    if raw is None or raw == "":
        raise missing_value("experiment_id")
    ident = row_id(raw)
    found = None if ident is None else session.get(Experiment, ident)
    if found is None or (stage is not None and found.lifecycle_stage != stage):
        raise missing(f"No Experiment with id={shown(raw)} exists")
    return found


def check_active(experiment: Experiment) -> None:
    if experiment.lifecycle_stage != ACTIVE:
        raise invalid(
            f"The experiment {experiment.id} must be in the 'active' state. "
            f"Current state is {experiment.lifecycle_stage}."
        )


def experiment_by_name(session: Session, name: str) -> Experiment | None:
    if "\x00" in name:  # no name holds NUL, and PostgreSQL fails on it: an unknown name
        return None
    statement = select(Experiment).where(Experiment.name == name)
    return session.scalars(statement).one_or_none()


# MLflow's sizes of an experiment tag's key and value.
TAG_KEY_LIMIT, TAG_VALUE_LIMIT = 250, 5000


def checked_tag(key: str, value: str) -> tuple[str, str]:
    return stored_text("key", key, TAG_KEY_LIMIT), stored_text("value", value, TAG_VALUE_LIMIT)


def _check_tags(tags: list[KeyValue]) -> dict[str, str]:
    for tag in tags:
        if not tag.key:
            raise missing_value("key")
    return dict(checked_tag(tag.key, tag.value) for tag in tags)


def _name_taken(session: Session, name: str, but: int | None = None) -> None:
    taken = select(Experiment.id).where((Experiment.name == name) | (Experiment.project == name))
    found = session.scalar(taken if but is None else taken.where(Experiment.id != but))
    if found is not None:
        raise MlflowError(
            400, "RESOURCE_ALREADY_EXISTS", f"Experiment(name={name}) already exists."
        )


def _resolved_location(location: str | None) -> str | None:
    """A relative local path is made absolute against the server's working directory,
    as MLflow's server stores it; URIs and absolute paths are kept as sent."""
    if not location or urlsplit(location).scheme or PurePosixPath(location).is_absolute():
        return location
    return (Path.cwd() / location).as_posix()


def create_experiment(session: Session, body: ExperimentCreate) -> Experiment:
    """A new experiment for the project `name`; its project's existing runs join it."""
    name = required_string("name", body.name)
    checked(RunCreate, project=name)
    tags = _check_tags(body.tags)
    location = _resolved_location(body.artifact_location)
    if location is not None:
        stored_text("artifact_location", location, 4000)
    _name_taken(session, name)
    experiment = Experiment(name=name, project=name, tags=tags, artifact_location=location)
    session.add(experiment)
    session.flush()
    return experiment


def _attribute(experiment: Experiment, key: str) -> Any:
    values = {
        "name": experiment.name,
        "experiment_id": experiment.id,
        "creation_time": to_ms(experiment.created_at),
        "last_update_time": to_ms(experiment.updated_at or experiment.created_at),
        "lifecycle_stage": experiment.lifecycle_stage,
    }
    if key not in values:
        raise invalid(f"Invalid attribute key '{key}' specified. Valid keys are {sorted(values)}")
    return values[key]


def _value(experiment: Experiment, kind: str, key: str) -> Any:
    if kind == "attribute":
        return _attribute(experiment, key)
    if kind == "tag":
        return (experiment.tags or {}).get(key)
    raise invalid(f"Invalid entity type '{kind}'. Valid values are ['attribute', 'tag']")


def search_experiments(session: Session, body: ExperimentSearch) -> dict[str, Any]:
    """Experiments of the view type matching the filter, in MLflow's order, paged."""
    clauses = search.parse_filter(body.filter)
    order = search.parse_order_by(body.order_by) or DEFAULT_ORDER
    offset = page_offset(body.page_token)
    size = page_size(body.max_results, search.SEARCH_MAX_RESULTS)
    stages = stages_of(body.view_type)
    statement = select(Experiment).where(Experiment.lifecycle_stage.in_(stages))
    # Loaded by id and sorted stably: ties keep MLflow's last order, experiment_id ASC.
    found = [
        experiment
        for experiment in session.scalars(statement.order_by(Experiment.id))
        if search.matches(clauses, functools.partial(_value, experiment))
    ]
    page, following = paged(search.ordered(found, order, _value), offset, size)
    out: dict[str, Any] = {"experiments": [experiment_json(e) for e in page]}
    if following is not None:
        out["next_page_token"] = following
    return out


def _set_runs_stage(session: Session, experiment: Experiment, stage: str) -> None:
    deleted_at = utcnow() if stage == DELETED else None
    session.execute(
        update(Run)
        .where(Run.project == experiment.project)
        .values(lifecycle_stage=stage, deleted_at=deleted_at)
    )


def set_stage(session: Session, raw_id: str | None, stage: str) -> None:
    """Delete (soft) or restore an experiment and, as MLflow does, all its runs."""
    current = ACTIVE if stage == DELETED else DELETED
    experiment = load_experiment(session, raw_id, stage=current)
    if stage == DELETED and experiment.id == DEFAULT_EXPERIMENT_ID:
        raise invalid(
            f"Cannot delete the default experiment '{DEFAULT_EXPERIMENT_ID}'. "
            "This is a reserved experiment."
        )
    experiment.lifecycle_stage, experiment.updated_at = stage, utcnow()
    _set_runs_stage(session, experiment, stage)
    session.flush()


def rename(session: Session, raw_id: str | None, new_name: str) -> None:
    """A new name; the project moves with it when it bore the old name (its runs too)."""
    experiment = load_experiment(session, raw_id)
    if experiment.lifecycle_stage != ACTIVE:
        raise MlflowError(400, "INVALID_STATE", "Cannot rename a non-active experiment.")
    checked(RunCreate, project=new_name)
    _name_taken(session, new_name, but=experiment.id)
    if experiment.project == experiment.name:
        session.execute(
            update(Run).where(Run.project == experiment.project).values(project=new_name)
        )
        experiment.project = new_name
    experiment.name, experiment.updated_at = new_name, utcnow()
    session.flush()


def set_tag(session: Session, raw_id: str | None, key: str, value: str) -> None:
    experiment = load_experiment(session, raw_id)
    check_active(experiment)
    key, value = checked_tag(key, value)
    experiment.tags = {**(experiment.tags or {}), key: value}
    experiment.updated_at = utcnow()
    session.flush()


def delete_tag(session: Session, raw_id: str | None, key: str) -> None:
    experiment = load_experiment(session, raw_id)
    check_active(experiment)
    tags = dict(experiment.tags or {})
    if key not in tags:
        raise missing(f"No tag with name: {key} in experiment with id {experiment.id}")
    del tags[key]
    experiment.tags, experiment.updated_at = tags, utcnow()
    session.flush()


def experiment_of(session: Session, run: Run) -> Experiment:
    """The experiment of a run's project, made for a project that has none yet (a run
    created on /api/v1)."""
    found = session.scalars(select(Experiment).where(Experiment.project == run.project)).first()
    if found is None:
        found = Experiment(name=run.project, project=run.project, tags={})
        session.add(found)
        session.flush()
    return found
