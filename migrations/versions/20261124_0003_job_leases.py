"""Jobs gain a name, a count of lapsed leases and a result summary.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("name", sa.String(length=250), nullable=True))
        batch.add_column(
            sa.Column("lease_lapses", sa.Integer(), server_default="0", nullable=False)
        )
        batch.add_column(sa.Column("summary", JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("summary")
        batch.drop_column("lease_lapses")
        batch.drop_column("name")
