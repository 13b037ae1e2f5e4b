"""MLflow's experiments: create, get (by id or name), search."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from momentum.contract import RunCreate
from service.auth import Scope, requires
from service.deps import SessionDep, WriteSessionDep
from service.mlflow import entities
from service.mlflow.errors import checked
from service.mlflow.schemas import (
    ExperimentCreate,
    ExperimentSearch,
    MlflowExperimentCreated,
    MlflowExperimentFound,
    MlflowExperimentPage,
    documented,
)

router = APIRouter()
READ, INGEST = requires(Scope.read), requires(Scope.ingest)


@router.post("/experiments/create", dependencies=[INGEST], **documented(MlflowExperimentCreated))
def experiments_create(body: ExperimentCreate, session: WriteSessionDep) -> dict[str, Any]:
    """Create an experiment: a project with an MLflow experiment id."""
    checked(RunCreate, project=body.name)
    return {"experiment_id": str(entities.create_experiment(session, body.name).id)}


@router.get("/experiments/get", dependencies=[READ], **documented(MlflowExperimentFound))
def experiments_get(
    experiment_id: Annotated[str, Query(examples=["0"])], session: SessionDep
) -> dict[str, Any]:
    """One experiment by id."""
    experiment = entities.load_experiment(session, experiment_id)
    return {"experiment": entities.experiment_json(experiment)}


@router.get("/experiments/get-by-name", dependencies=[READ], **documented(MlflowExperimentFound))
def experiments_get_by_name(experiment_name: str, session: SessionDep) -> dict[str, Any]:
    """One experiment by name."""
    experiment = entities.experiment_by_name(session, experiment_name)
    if experiment is None:
        raise entities.missing(f"Could not find experiment with name '{experiment_name}'")
    return {"experiment": entities.experiment_json(experiment)}


@router.post("/experiments/search", dependencies=[READ], **documented(MlflowExperimentPage))
def experiments_search(body: ExperimentSearch, session: SessionDep) -> dict[str, Any]:
    """Experiments, filtered by `name` (=, !=, LIKE, ILIKE), paged."""
    return entities.search_experiments(session, body)


@router.get("/experiments/search", dependencies=[READ], **documented(MlflowExperimentPage))
def experiments_search_get(
    session: SessionDep,
    max_results: int = 1000,
    page_token: str | None = None,
    filter: str | None = None,
    view_type: str | None = None,
) -> dict[str, Any]:
    """Experiments, filtered by `name`, paged (GET form)."""
    body = ExperimentSearch(
        max_results=max_results, page_token=page_token, filter=filter, view_type=view_type
    )
    return entities.search_experiments(session, body)
