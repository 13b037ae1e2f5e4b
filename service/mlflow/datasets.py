"""MLflow's datasets: `runs/log-inputs` records which datasets a run used (autologging
and `mlflow.log_input` call it), `experiments/search-datasets` lists an experiment's,
and a run's `inputs.dataset_inputs` shows them, as MLflow stores them (a dataset is
unique in its experiment by name and digest; a run names one dataset once)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.mlflow.errors import invalid, missing_value
from service.models import Experiment, Run
from service.models_mlflow import Dataset, RunInput

# MLflow's column sizes; a longer value is its 400 too.
LIMITS = {"name": 500, "digest": 36, "source_type": 36, "source": 65535}
OPTIONAL_LIMITS = {"schema": 1048575, "profile": 16777215}
TAG_KEY_LIMIT, TAG_VALUE_LIMIT = 255, 500
CONTEXT_TAG = "mlflow.data.context"
MAX_SUMMARIES, MAX_SEARCH_EXPERIMENTS = 1000, 20


def _text(raw: dict[str, Any], field: str, limit: int, required: bool) -> str | None:
    value = raw.get(field)
    if value is None or value == "":
        if required:
            raise missing_value(f"dataset.{field}")
        return None
    if not isinstance(value, str) or "\x00" in value:
        raise invalid(f"Invalid value for dataset.{field}: text without NUL expected")
    if len(value) > limit:
        raise invalid(f"Dataset {field} exceeds the maximum length of {limit}")
    return value


def _tags(raw: Any) -> dict[str, str]:
    if not isinstance(raw, list):
        raise invalid("Invalid value for dataset input tags: a list of {key, value}")
    tags: dict[str, str] = {}
    for tag in raw:
        key, value = (tag.get("key"), tag.get("value", "")) if isinstance(tag, dict) else (0, 0)
        if (
            not isinstance(key, str)
            or not key
            or not isinstance(value, str)
            or "\x00" in key + value
        ):
            raise invalid("Invalid dataset input tag: a key and a text value expected")
        if len(key) > TAG_KEY_LIMIT or len(value) > TAG_VALUE_LIMIT:
            raise invalid(
                f"Dataset input tag keys are at most {TAG_KEY_LIMIT} characters, "
                f"values at most {TAG_VALUE_LIMIT}"
            )
        tags[key] = value
    return tags


def parse_inputs(raw_inputs: list[Any]) -> list[tuple[dict[str, Any], dict[str, str]]]:
    """Each dataset input as (dataset fields, input tags), all checked before any write."""
    parsed = []
    for raw in raw_inputs:
        dataset = raw.get("dataset") if isinstance(raw, dict) else None
        if not isinstance(dataset, dict):
            raise missing_value("dataset")
        fields = {f: _text(dataset, f, limit, True) for f, limit in LIMITS.items()}
        fields |= {f: _text(dataset, f, limit, False) for f, limit in OPTIONAL_LIMITS.items()}
        parsed.append((fields, _tags(raw.get("tags", []))))
    return parsed


def _dataset(session: Session, experiment_id: int, fields: dict[str, Any]) -> Dataset:
    """The experiment's dataset of this name and digest, made on first use."""
    found = session.scalars(
        select(Dataset).where(
            Dataset.experiment_id == experiment_id,
            Dataset.name == fields["name"],
            Dataset.digest == fields["digest"],
        )
    ).one_or_none()
    if found is None:
        found = Dataset(experiment_id=experiment_id, **fields)
        session.add(found)
        session.flush()
    return found


def log_inputs(
    session: Session,
    run: Run,
    experiment_id: int,
    inputs: list[tuple[dict[str, Any], dict[str, str]]],
) -> None:
    """Record the run's dataset inputs; one the run already names is kept as it was."""
    for fields, tags in inputs:
        dataset = _dataset(session, experiment_id, fields)
        known = select(RunInput.id).where(
            RunInput.run_id == run.id, RunInput.dataset_id == dataset.id
        )
        if session.scalar(known) is None:
            session.add(RunInput(run_id=run.id, dataset_id=dataset.id, tags=tags))
            session.flush()


def _dataset_json(dataset: Dataset) -> dict[str, Any]:
    out = {field: getattr(dataset, field) for field in LIMITS}
    out |= {f: getattr(dataset, f) for f in OPTIONAL_LIMITS if getattr(dataset, f) is not None}
    return out


def inputs_of(session: Session, run_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Each run's `inputs` as MLflow's run has them (runs without inputs left out)."""
    if not run_ids:
        return {}
    rows = session.execute(
        select(RunInput.run_id, RunInput.tags, Dataset)
        .join(Dataset, Dataset.id == RunInput.dataset_id)
        .where(RunInput.run_id.in_(run_ids))
        .order_by(RunInput.id)
    )
    out: dict[int, dict[str, Any]] = {}
    for run_id, tags, dataset in rows:
        item = {
            "tags": [{"key": k, "value": v} for k, v in sorted(tags.items())],
            "dataset": _dataset_json(dataset),
        }
        out.setdefault(run_id, {"dataset_inputs": []})["dataset_inputs"].append(item)
    return out


def search_datasets(session: Session, experiment_ids: list[str]) -> list[dict[str, Any]]:
    """The datasets runs of these experiments used, with each input's context tag."""
    if not experiment_ids:
        raise invalid("SearchDatasets request must specify at least one experiment_id.")
    if len(experiment_ids) > MAX_SEARCH_EXPERIMENTS:
        raise invalid(
            f"SearchDatasets request cannot specify more than {MAX_SEARCH_EXPERIMENTS} "
            f"experiment_ids. Received {len(experiment_ids)} experiment_ids."
        )
    ids = [int(raw) for raw in experiment_ids if raw.isascii() and raw.isdigit() and len(raw) < 10]
    rows = session.execute(
        select(Dataset.experiment_id, Dataset.name, Dataset.digest, RunInput.tags)
        .join(RunInput, RunInput.dataset_id == Dataset.id)
        .join(Experiment, Experiment.id == Dataset.experiment_id)
        .where(Dataset.experiment_id.in_(ids))
        .order_by(Dataset.experiment_id, Dataset.name, Dataset.digest, RunInput.id)
    )
    summaries: dict[tuple[int, str, str, str | None], None] = {}
    for experiment_id, name, digest, tags in rows:
        summaries.setdefault((experiment_id, name, digest, tags.get(CONTEXT_TAG)), None)
    return [
        {"experiment_id": str(e), "name": n, "digest": d, **({"context": c} if c else {})}
        for e, n, d, c in list(summaries)[:MAX_SUMMARIES]
    ]
