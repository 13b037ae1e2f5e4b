"""Entry points: registered definitions and the workers that have them; jobs and sweeps
of an entry point (issue 17).

Only new tables and nullable columns: `jobs.config` stays NOT NULL (`{}` for an
entry-point job) because loosening it would make SQLite copy `jobs`, and dropping the
old table would null every worker's current job.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "entry_points",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("definition", JSON_DOCUMENT, nullable=False),
        sa.Column("registered_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_entry_points")),
        sa.UniqueConstraint("name", "digest", name=op.f("uq_entry_points_name_digest")),
    )
    op.create_table(
        "entry_point_workers",
        sa.Column("entry_point_id", sa.Integer(), nullable=False),
        sa.Column("worker_id", sa.String(250), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_point_id"],
            ["entry_points.id"],
            name=op.f("fk_entry_point_workers_entry_point_id_entry_points"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("entry_point_id", "worker_id", name=op.f("pk_entry_point_workers")),
    )
    # Plain ALTER TABLE … ADD COLUMN: never a batch copy of `jobs` or `sweeps` (see 0009).
    op.add_column("jobs", sa.Column("entry_point", sa.String(100), nullable=True))
    op.add_column("jobs", sa.Column("entry_point_digest", sa.String(64), nullable=True))
    op.add_column("jobs", sa.Column("params", JSON_DOCUMENT, nullable=True))
    op.add_column("sweeps", sa.Column("entry_point", sa.String(100), nullable=True))


def downgrade() -> None:
    # Entry-point jobs cannot run without their definitions: they go with them.
    op.execute("DELETE FROM jobs WHERE entry_point IS NOT NULL")
    op.drop_column("sweeps", "entry_point")
    op.drop_column("jobs", "params")
    op.drop_column("jobs", "entry_point_digest")
    op.drop_column("jobs", "entry_point")
    op.drop_table("entry_point_workers")
    op.drop_table("entry_points")
