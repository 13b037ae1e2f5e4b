"""Early stopping of jobs (#18): a job's `early_stopped` verdict and its stop request.

A placeholder until the issue's work fills it in: revision ids are assigned up front so
parallel work chains its migrations without renumbering.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
