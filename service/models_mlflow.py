"""MLflow's datasets and the runs that used them (`runs/log-inputs`), as MLflow stores
them: a dataset belongs to an experiment and is unique there by (name, digest); a run's
input names one dataset once, with its own tags (e.g. `mlflow.data.context: train`)."""

from __future__ import annotations

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from service.models import Base, JsonDocument


class Dataset(Base):
    __tablename__ = "mlflow_datasets"
    __table_args__ = (UniqueConstraint("experiment_id", "name", "digest"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(500))
    digest: Mapped[str] = mapped_column(String(36))
    source_type: Mapped[str] = mapped_column(String(36))
    source: Mapped[str] = mapped_column(Text)
    schema: Mapped[str | None] = mapped_column(Text)
    profile: Mapped[str | None] = mapped_column(Text)


class RunInput(Base):
    __tablename__ = "mlflow_run_inputs"
    __table_args__ = (UniqueConstraint("run_id", "dataset_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    dataset_id: Mapped[int] = mapped_column(
        ForeignKey("mlflow_datasets.id", ondelete="CASCADE"), index=True
    )
    tags: Mapped[dict[str, str]] = mapped_column(JsonDocument, default=dict)
