"""Point chunks: a batch appends its points as a small row instead of rewriting the
series' tail block (see service/storage/blocks.py).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The block layout of service/storage/blocks.py at this revision.
_RECORD = np.dtype([("step", "<i8"), ("value", "<f8"), ("wall_time", "<f8")])
_BLOCK_STEPS = 4096


def upgrade() -> None:
    with op.batch_alter_table("series") as batch:
        batch.add_column(sa.Column("tail_chunks", sa.Integer(), server_default="0", nullable=False))
    op.create_table(
        "point_chunks",
        sa.Column("series_id", sa.Integer(), nullable=False),
        sa.Column("first_step", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("last_step", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("min_value", sa.Float(), nullable=True),
        sa.Column("max_value", sa.Float(), nullable=True),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["series_id"],
            ["series.id"],
            name=op.f("fk_point_chunks_series_id_series"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("series_id", "first_step", name=op.f("pk_point_chunks")),
    )
    if op.get_bind().dialect.name == "postgresql":
        # Chunks are a few KB of packed floats that barely compress: no pglz attempt,
        # and rows up to a page stay inline rather than going out to TOAST.
        op.execute("ALTER TABLE point_chunks ALTER COLUMN data SET STORAGE EXTERNAL")
        op.execute("ALTER TABLE point_chunks SET (toast_tuple_target = 8160)")


def downgrade() -> None:
    _fold_all_chunks(op.get_bind())
    op.drop_table("point_chunks")
    # A plain ALTER TABLE … DROP COLUMN (SQLite >= 3.35), never a batch copy of `series`:
    # dropping the old table would cascade to every block of every series.
    op.drop_column("series", "tail_chunks")


def _fold_all_chunks(connection: sa.Connection) -> None:
    """Revision 0006 knows blocks alone: each block's chunks join its row. Chunks hold
    steps above everything else of their series, so concatenation keeps the order."""
    chunks = connection.execute(
        sa.text("SELECT series_id, first_step, data FROM point_chunks ORDER BY 1, 2")
    ).fetchall()
    by_block: dict[tuple[int, int], list[bytes]] = {}
    for series_id, first_step, data in chunks:
        by_block.setdefault((series_id, first_step // _BLOCK_STEPS), []).append(data)
    stored = sa.text("SELECT data FROM point_blocks WHERE series_id = :s AND block = :b")
    delete = sa.text("DELETE FROM point_blocks WHERE series_id = :s AND block = :b")
    insert = sa.text(
        "INSERT INTO point_blocks "
        "(series_id, block, first_step, last_step, count, min_value, max_value, data) "
        "VALUES (:s, :b, :first, :last, :count, :low, :high, :data)"
    )
    for (series_id, block), datas in by_block.items():
        key = {"s": series_id, "b": block}
        older = connection.execute(stored, key).scalars().all()
        records = np.concatenate([np.frombuffer(d, dtype=_RECORD) for d in [*older, *datas]])
        values = records["value"]
        finite = values[np.isfinite(values)]
        low, high = (float(finite.min()), float(finite.max())) if len(finite) else (None, None)
        connection.execute(delete, key)
        connection.execute(
            insert,
            {
                **key,
                "first": int(records["step"][0]),
                "last": int(records["step"][-1]),
                "count": len(records),
                "low": low,
                "high": high,
                "data": records.tobytes(),
            },
        )
