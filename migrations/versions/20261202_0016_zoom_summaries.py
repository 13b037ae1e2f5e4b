"""Compare at scale (#19): per-block summaries at a few zoom levels.

A placeholder until the issue's work fills it in: revision ids are assigned up front so
parallel work chains its migrations without renumbering.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
