"""Adaptive sweeps (#18): search strategy, space, budget, objective, rung decisions.

`sweeps` gains the search's settings; `sweep_trials` holds each sampled point of a
random or tpe sweep (the sampler's history is rebuilt from it); `sweep_rungs` holds each
run's value and verdict at each rung, its primary key making a second decision about
the same rung impossible.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.add_column(
        "sweeps", sa.Column("strategy", sa.String(16), nullable=False, server_default="grid")
    )
    op.add_column("sweeps", sa.Column("space", JSON, nullable=True))
    op.add_column("sweeps", sa.Column("objective", JSON, nullable=True))
    op.add_column("sweeps", sa.Column("early_stop", JSON, nullable=True))
    op.add_column("sweeps", sa.Column("max_jobs", sa.Integer(), nullable=True))
    op.add_column("sweeps", sa.Column("parallelism", sa.Integer(), nullable=True))
    op.add_column("sweeps", sa.Column("search_seed", sa.Integer(), nullable=True))
    op.add_column(
        "sweeps", sa.Column("searching", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.add_column("sweeps", sa.Column("job_defaults", JSON, nullable=True))
    op.create_table(
        "sweep_trials",
        sa.Column("sweep_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("params", JSON, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("job_ids", JSON, nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sweep_id"],
            ["sweeps.id"],
            name=op.f("fk_sweep_trials_sweep_id_sweeps"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("sweep_id", "number", name=op.f("pk_sweep_trials")),
    )
    op.create_table(
        "sweep_rungs",
        sa.Column("sweep_id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("step", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("cutoff", sa.Float(), nullable=True),
        sa.Column("reached", sa.Integer(), nullable=False),
        sa.Column("stopped", sa.Boolean(), nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sweep_id"],
            ["sweeps.id"],
            name=op.f("fk_sweep_rungs_sweep_id_sweeps"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_sweep_rungs_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("sweep_id", "job_id", "step", name=op.f("pk_sweep_rungs")),
    )


def downgrade() -> None:
    op.drop_table("sweep_rungs")
    op.drop_table("sweep_trials")
    # A plain ALTER TABLE … DROP COLUMN, never a batch copy of `sweeps`: dropping the
    # old table would cascade to every job of every sweep (see 0009).
    for column in (
        "job_defaults",
        "searching",
        "search_seed",
        "parallelism",
        "max_jobs",
        "early_stop",
        "objective",
    ):
        op.drop_column("sweeps", column)
    op.drop_column("sweeps", "space")
    op.drop_column("sweeps", "strategy")
