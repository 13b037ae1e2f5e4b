"""The experiments table: MLflow experiment ids for projects (the MLflow adapter).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    experiments = op.create_table(
        "experiments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("project", sa.String(250), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experiments")),
        sa.UniqueConstraint("name", name=op.f("uq_experiments_name")),
        sa.UniqueConstraint("project", name=op.f("uq_experiments_project")),
    )
    # MLflow's Default experiment is always "0"; a serial column starts at 1 after it.
    now = datetime.now(UTC).replace(tzinfo=None)
    op.bulk_insert(
        experiments, [{"id": 0, "name": "Default", "project": "default", "created_at": now}]
    )


def downgrade() -> None:
    op.drop_table("experiments")
