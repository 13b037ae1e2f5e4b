"""Sweeps lose their `status` column: it was written once ("queued") and never read; a
sweep's status is derived from its jobs' when read (service/storage/sweeps.py).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ALTER TABLE … DROP COLUMN (SQLite >= 3.35), never a batch copy of `sweeps`:
    # dropping the old table would cascade to every job of every sweep.
    op.drop_column("sweeps", "status")


def downgrade() -> None:
    # Every sweep held "queued" there (nothing ever changed it).
    op.add_column(
        "sweeps",
        sa.Column("status", sa.String(length=16), server_default="queued", nullable=False),
    )
