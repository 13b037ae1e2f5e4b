"""Run-list indexes: sorts read a page from an index at any offset, name search uses trigrams.

Measured with bench/bigtable.py (50,500 runs, 50 million points, PostgreSQL): a page
deep in the default sort (`-created_at`, offset 20,000) or sorted by momentum sorted
every matching run, because the sorts end in `id` and the indexes did not; `q` (ILIKE
'%text%') scanned the whole table twice (count and page). (created_at, id) and
(momentum, id) replace the one-column indexes; `name` gets a pg_trgm GIN index on
PostgreSQL, or a plain index where the extension cannot be created (a role without
CREATE on the database): searches then scan as before. SQLite gets plain indexes.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _trigrams_available() -> bool:
    """pg_trgm is created here if it can be (a trusted extension since PostgreSQL 13)."""
    bind = op.get_bind()
    try:
        with bind.begin_nested():
            bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except sa.exc.DBAPIError:
        return False
    return True


def upgrade() -> None:
    op.drop_index("ix_runs_created_at", table_name="runs")
    op.create_index("ix_runs_created_at_id", "runs", ["created_at", "id"])
    op.drop_index("ix_runs_momentum", table_name="runs")
    op.create_index("ix_runs_momentum_id", "runs", ["momentum", "id"])
    if op.get_bind().dialect.name == "postgresql" and _trigrams_available():
        op.create_index(
            "ix_runs_name",
            "runs",
            ["name"],
            postgresql_using="gin",
            postgresql_ops={"name": "gin_trgm_ops"},
        )
    else:
        op.create_index("ix_runs_name", "runs", ["name"])


def downgrade() -> None:
    # pg_trgm stays: other objects may have come to depend on it.
    op.drop_index("ix_runs_name", table_name="runs")
    op.drop_index("ix_runs_momentum_id", table_name="runs")
    op.create_index("ix_runs_momentum", "runs", ["momentum"])
    op.drop_index("ix_runs_created_at_id", table_name="runs")
    op.create_index("ix_runs_created_at", "runs", ["created_at"])
