"""Compare at scale (#19): per-block summaries at a few zoom levels.

`point_summaries` holds, per block, `cells` (a summary per 64 points) and `summary` (of
the whole block), see service/storage/cells.py. Existing blocks are backfilled here, a
batch of blocks at a time in key order; a block written later gets its row in the same
transaction. (A read still copes with a block that has none by reading its points.)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import sqlalchemy as sa
from alembic import op

from service.storage.blocks import RECORD_DTYPE
from service.storage.cells import block_summaries

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH_ROWS = 500


def upgrade() -> None:
    op.create_table(
        "point_summaries",
        sa.Column("series_id", sa.Integer(), nullable=False),
        sa.Column("block", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("cells", sa.LargeBinary(), nullable=False),
        sa.Column("summary", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["series_id"],
            ["series.id"],
            name=op.f("fk_point_summaries_series_id_series"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("series_id", "block", name=op.f("pk_point_summaries")),
    )
    _backfill(op.get_bind())


def _backfill(connection: sa.Connection) -> None:
    """Summaries of every existing block, keyset-paged so memory stays one batch."""
    page = sa.text(
        "SELECT series_id, block, data FROM point_blocks "
        "WHERE series_id > :s OR (series_id = :s AND block > :b) "
        "ORDER BY series_id, block LIMIT :n"
    )
    fill = sa.text(
        "INSERT INTO point_summaries (series_id, block, cells, summary) "
        "VALUES (:s, :b, :cells, :summary)"
    )
    after = {"s": -1, "b": -1}
    while rows := connection.execute(page, {**after, "n": _BATCH_ROWS}).fetchall():
        summaries = []
        for series_id, block, data in rows:
            cells, summary = block_summaries(np.frombuffer(data, dtype=RECORD_DTYPE))
            summaries.append({"s": series_id, "b": block, "cells": cells, "summary": summary})
        connection.execute(fill, summaries)
        after = {"s": rows[-1][0], "b": rows[-1][1]}


def downgrade() -> None:
    op.drop_table("point_summaries")
