"""Run diagnosis (#21): findings stored per run and key.

A placeholder until the issue's work fills it in: revision ids are assigned up front so
parallel work chains its migrations without renumbering.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
