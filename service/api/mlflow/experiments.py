"""MLflow's experiments: create, get (by id or name), search, delete and restore (soft,
with their runs), rename, tags, and the datasets their runs used."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from service.auth import Scope, requires
from service.deps import SessionDep, WriteSessionDep
from service.mlflow import datasets
from service.mlflow import experiments as mlflow_experiments
from service.mlflow.errors import missing, required_string
from service.mlflow.schemas import (
    DatasetSearch,
    ExperimentCreate,
    ExperimentRef,
    ExperimentSearch,
    ExperimentTag,
    ExperimentUpdate,
    MlflowDatasetSummaries,
    MlflowEmpty,
    MlflowExperimentCreated,
    MlflowExperimentFound,
    MlflowExperimentPage,
    documented,
)
from service.models import ACTIVE, DELETED

router = APIRouter()
READ, INGEST, ADMIN = requires(Scope.read), requires(Scope.ingest), requires(Scope.admin)


@router.post("/experiments/create", dependencies=[INGEST], **documented(MlflowExperimentCreated))
def experiments_create(body: ExperimentCreate, session: WriteSessionDep) -> dict[str, Any]:
    """Create an experiment (a project with an MLflow experiment id), with tags."""
    required_string("name", body.name)
    experiment = mlflow_experiments.create_experiment(session, body)
    return {"experiment_id": str(experiment.id)}


@router.get("/experiments/get", dependencies=[READ], **documented(MlflowExperimentFound))
def experiments_get(
    session: SessionDep, experiment_id: Annotated[str | None, Query(examples=["0"])] = None
) -> dict[str, Any]:
    """One experiment by id, active or deleted."""
    experiment = mlflow_experiments.load_experiment(session, experiment_id)
    return {"experiment": mlflow_experiments.experiment_json(experiment)}


@router.get("/experiments/get-by-name", dependencies=[READ], **documented(MlflowExperimentFound))
def experiments_get_by_name(
    session: SessionDep, experiment_name: str | None = None
) -> dict[str, Any]:
    """One experiment by name, active or deleted."""
    name = required_string("experiment_name", experiment_name)
    experiment = mlflow_experiments.experiment_by_name(session, name)
    if experiment is None:
        raise missing(f"Could not find experiment with name '{name}'")
    return {"experiment": mlflow_experiments.experiment_json(experiment)}


@router.post("/experiments/search", dependencies=[READ], **documented(MlflowExperimentPage))
def experiments_search(body: ExperimentSearch, session: SessionDep) -> dict[str, Any]:
    """Experiments of a view type, filtered and ordered with MLflow's syntax, paged."""
    return mlflow_experiments.search_experiments(session, body)


@router.get("/experiments/search", dependencies=[READ], **documented(MlflowExperimentPage))
def experiments_search_get(
    session: SessionDep,
    max_results: int = 1000,
    page_token: str | None = None,
    filter: str | None = None,
    view_type: str | None = None,
    order_by: Annotated[list[str] | None, Query()] = None,
) -> dict[str, Any]:
    """Experiments, filtered, ordered and paged (GET form)."""
    body = ExperimentSearch(
        max_results=max_results,
        page_token=page_token,
        filter=filter,
        view_type=view_type,
        order_by=order_by or [],
    )
    return mlflow_experiments.search_experiments(session, body)


@router.post("/experiments/delete", dependencies=[ADMIN], **documented(MlflowEmpty))
def experiments_delete(body: ExperimentRef, session: WriteSessionDep) -> dict[str, Any]:
    """Mark an experiment and its runs deleted (restorable)."""
    mlflow_experiments.set_stage(session, body.experiment_id, DELETED)
    return {}


@router.post("/experiments/restore", dependencies=[ADMIN], **documented(MlflowEmpty))
def experiments_restore(body: ExperimentRef, session: WriteSessionDep) -> dict[str, Any]:
    """Make a deleted experiment and its runs active again."""
    mlflow_experiments.set_stage(session, body.experiment_id, ACTIVE)
    return {}


@router.post("/experiments/update", dependencies=[INGEST], **documented(MlflowEmpty))
def experiments_update(body: ExperimentUpdate, session: WriteSessionDep) -> dict[str, Any]:
    """Rename an experiment."""
    required_string("experiment_id", body.experiment_id)
    new_name = required_string("new_name", body.new_name)
    mlflow_experiments.rename(session, body.experiment_id, new_name)
    return {}


@router.post("/experiments/set-experiment-tag", dependencies=[INGEST], **documented(MlflowEmpty))
def experiments_set_tag(body: ExperimentTag, session: WriteSessionDep) -> dict[str, Any]:
    """Set one tag of an experiment."""
    required_string("experiment_id", body.experiment_id)
    key = required_string("key", body.key)
    mlflow_experiments.set_tag(session, body.experiment_id, key, body.value)
    return {}


@router.post("/experiments/delete-experiment-tag", dependencies=[INGEST], **documented(MlflowEmpty))
def experiments_delete_tag(body: ExperimentTag, session: WriteSessionDep) -> dict[str, Any]:
    """Delete one tag of an experiment."""
    required_string("experiment_id", body.experiment_id)
    key = required_string("key", body.key)
    mlflow_experiments.delete_tag(session, body.experiment_id, key)
    return {}


@router.post(
    "/experiments/search-datasets", dependencies=[READ], **documented(MlflowDatasetSummaries)
)
def experiments_search_datasets(body: DatasetSearch, session: SessionDep) -> dict[str, Any]:
    """The datasets the experiments' runs logged as inputs, with their context."""
    return {"dataset_summaries": datasets.search_datasets(session, body.experiment_ids)}
