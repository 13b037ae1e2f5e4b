"""Job logs: a job's child output, kept as head and newest tail within a cap.

`job_logs` holds one row per job with a log (its length, what is kept, the current
attempt's start); `job_log_chunks` the text, one row per stored piece, keyed by the
byte offset where it starts (service/storage/job_logs.py).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_logs",
        sa.Column("job_id", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("attempt_start", sa.BigInteger(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("stored_bytes", sa.BigInteger(), nullable=False),
        sa.Column("head_bytes", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_job_logs_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_job_logs")),
    )
    op.create_table(
        "job_log_chunks",
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("start", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("nbytes", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["job_logs.job_id"],
            name=op.f("fk_job_log_chunks_job_id_job_logs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_id", "start", name=op.f("pk_job_log_chunks")),
    )


def downgrade() -> None:
    op.drop_table("job_log_chunks")
    op.drop_table("job_logs")
