"""Series keep their last step and value; blocks keep their finite extremes.

Ingest now appends in-order points straight into the tail block (SQLite) instead of
inserting rows and sealing them later, so "the last value" and "the best value" can
no longer be read from rows: they are kept beside the data instead.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The block layout of service/storage/blocks.py at this revision.
_RECORD = np.dtype([("step", "<i8"), ("value", "<f8"), ("wall_time", "<f8")])

# Before this revision a series' highest step always stayed in `points`.
_LAST_FROM_ROWS = """
UPDATE series SET
  last_step = (SELECT max(step) FROM points WHERE points.series_id = series.id),
  last_value = (SELECT value FROM points WHERE points.series_id = series.id
                ORDER BY step DESC LIMIT 1)
"""


def upgrade() -> None:
    with op.batch_alter_table("series") as batch:
        batch.add_column(sa.Column("last_step", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("last_value", sa.Float(), nullable=True))
    with op.batch_alter_table("point_blocks") as batch:
        batch.add_column(sa.Column("min_value", sa.Float(), nullable=True))
        batch.add_column(sa.Column("max_value", sa.Float(), nullable=True))
    connection = op.get_bind()
    if connection.dialect.name == "postgresql":
        # Packed floats barely compress: skip pglz on every tail-block rewrite.
        op.execute("ALTER TABLE point_blocks ALTER COLUMN data SET STORAGE EXTERNAL")
    connection.execute(sa.text(_LAST_FROM_ROWS))
    _backfill_block_extremes(connection)


def _backfill_block_extremes(connection: sa.Connection) -> None:
    blocks = connection.execute(sa.text("SELECT series_id, block, data FROM point_blocks"))
    update = sa.text(
        "UPDATE point_blocks SET min_value = :low, max_value = :high "
        "WHERE series_id = :series_id AND block = :block"
    )
    for series_id, block, data in blocks.fetchall():
        values = np.frombuffer(data, dtype=_RECORD)["value"]
        finite = values[np.isfinite(values)]
        low, high = (float(finite.min()), float(finite.max())) if len(finite) else (None, None)
        params = {"low": low, "high": high, "series_id": series_id, "block": block}
        connection.execute(update, params)


def downgrade() -> None:
    connection = op.get_bind()
    _unseal_tail_blocks(connection)
    if connection.dialect.name == "postgresql":
        op.execute("ALTER TABLE point_blocks ALTER COLUMN data SET STORAGE EXTENDED")
    with op.batch_alter_table("point_blocks") as batch:
        batch.drop_column("max_value")
        batch.drop_column("min_value")
    with op.batch_alter_table("series") as batch:
        batch.drop_column("last_value")
        batch.drop_column("last_step")


def _unseal_tail_blocks(connection: sa.Connection) -> None:
    """Revision 0003 reads a series' last value from `points`: give each series back
    the rows of the block that holds its highest step."""
    tails = connection.execute(
        sa.text(
            "SELECT b.series_id, b.block, b.data FROM point_blocks b "
            "JOIN series s ON s.id = b.series_id WHERE b.last_step = s.last_step"
        )
    ).fetchall()
    insert = sa.text(
        "INSERT INTO points (series_id, step, value, wall_time) "
        "VALUES (:series_id, :step, :value, :wall_time)"
    )
    for series_id, block, data in tails:
        records = np.frombuffer(data, dtype=_RECORD)
        rows = [
            {
                "series_id": series_id,
                "step": int(step),
                "value": None if value != value else float(value),
                "wall_time": float(wall_time),
            }
            for step, value, wall_time in records.tolist()
        ]
        connection.execute(insert, rows)
        connection.execute(
            sa.text("DELETE FROM point_blocks WHERE series_id = :s AND block = :b"),
            {"s": series_id, "b": block},
        )
        connection.execute(
            sa.text("UPDATE series SET sealed_until = :step WHERE id = :s"),
            {"step": int(records["step"][0]), "s": series_id},
        )
