"""MLflow tracking (#20): lifecycle stages, experiment tags, user ids, datasets.

Runs and experiments get MLflow's lifecycle stage (soft delete and restore), runs the
user MLflow's client names, experiments their artifact location, tags and last update;
datasets and run inputs are new tables (service/models_mlflow.py).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("runs") as runs:
        runs.add_column(
            sa.Column("lifecycle_stage", sa.String(16), nullable=False, server_default="active")
        )
        runs.add_column(sa.Column("deleted_at", sa.DateTime(), nullable=True))
        runs.add_column(sa.Column("user_id", sa.String(250), nullable=True))
    with op.batch_alter_table("experiments") as experiments:
        experiments.add_column(sa.Column("updated_at", sa.DateTime(), nullable=True))
        experiments.add_column(
            sa.Column("lifecycle_stage", sa.String(16), nullable=False, server_default="active")
        )
        experiments.add_column(sa.Column("artifact_location", sa.Text(), nullable=True))
        experiments.add_column(
            sa.Column("tags", JSON_DOCUMENT, nullable=False, server_default="{}")
        )
    _create_dataset_tables()


def _create_dataset_tables() -> None:
    op.create_table(
        "mlflow_datasets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("digest", sa.String(36), nullable=False),
        sa.Column("source_type", sa.String(36), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("schema", sa.Text(), nullable=True),
        sa.Column("profile", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_mlflow_datasets_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mlflow_datasets")),
        sa.UniqueConstraint(
            "experiment_id",
            "name",
            "digest",
            name=op.f("uq_mlflow_datasets_experiment_id_name_digest"),
        ),
    )
    op.create_table(
        "mlflow_run_inputs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("tags", JSON_DOCUMENT, nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["runs.id"],
            name=op.f("fk_mlflow_run_inputs_run_id_runs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["mlflow_datasets.id"],
            name=op.f("fk_mlflow_run_inputs_dataset_id_mlflow_datasets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mlflow_run_inputs")),
        sa.UniqueConstraint(
            "run_id", "dataset_id", name=op.f("uq_mlflow_run_inputs_run_id_dataset_id")
        ),
    )
    op.create_index(op.f("ix_mlflow_run_inputs_run_id"), "mlflow_run_inputs", ["run_id"])
    op.create_index(op.f("ix_mlflow_run_inputs_dataset_id"), "mlflow_run_inputs", ["dataset_id"])


def downgrade() -> None:
    op.drop_table("mlflow_run_inputs")
    op.drop_table("mlflow_datasets")
    # Plain DROP COLUMN, never a batch rebuild: on SQLite a rebuilt `runs` table would
    # cascade-delete every run's series and points (see migration 0009).
    for column in ("tags", "artifact_location", "lifecycle_stage", "updated_at"):
        op.drop_column("experiments", column)
    for column in ("user_id", "deleted_at", "lifecycle_stage"):
        op.drop_column("runs", column)
