"""Early stopping of jobs (#18): a job's `early_stopped` verdict (which, on a running
job, is also its stop request) and the same verdict on its run.

Only nullable columns, added with plain ALTER TABLE … ADD COLUMN: never a batch copy
of `jobs` or `runs` (see 0009).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.add_column("jobs", sa.Column("early_stopped", JSON_DOCUMENT, nullable=True))
    op.add_column("runs", sa.Column("early_stopped", JSON_DOCUMENT, nullable=True))


def downgrade() -> None:
    op.drop_column("runs", "early_stopped")
    op.drop_column("jobs", "early_stopped")
