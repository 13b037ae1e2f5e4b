"""MLflow tracking (#20): lifecycle stages, experiment tags, user ids, datasets.

A placeholder until the issue's work fills it in: revision ids are assigned up front so
parallel work chains its migrations without renumbering.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
