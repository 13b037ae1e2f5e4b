"""Run diagnosis (#21): findings stored per run and key.

`run_findings` holds what the live diagnosis last read in each diagnosed key of a run
(oscillation, plateau, spike, divergence, overfitting), so `GET /runs?finding=` filters
and the dashboard shows badges without analysing curves per request.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "run_findings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("from_step", sa.BigInteger(), nullable=False),
        sa.Column("to_step", sa.BigInteger(), nullable=False),
        sa.Column(
            "detail", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("advice", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_run_findings_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run_findings")),
    )
    op.create_index("ix_run_findings_run_id_key", "run_findings", ["run_id", "key"])
    op.create_index("ix_run_findings_kind_run_id", "run_findings", ["kind", "run_id"])


def downgrade() -> None:
    op.drop_index("ix_run_findings_kind_run_id", table_name="run_findings")
    op.drop_index("ix_run_findings_run_id_key", table_name="run_findings")
    op.drop_table("run_findings")
