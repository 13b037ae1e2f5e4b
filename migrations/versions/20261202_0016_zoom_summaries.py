"""Compare at scale (#19): per-block summaries at a few zoom levels.

Each block row gets `cells` (a summary per 64 points) and `summary` (of the whole
block), see service/storage/cells.py. Existing blocks are backfilled here, a batch of
rows at a time in key order; a block written later gets them with its data. (A read
still copes with a NULL pair by reading that block's points.)

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
    # Plain ALTER TABLE … ADD COLUMN, never a batch copy: recreating point_blocks on
    # SQLite would rewrite every point.
    op.add_column("point_blocks", sa.Column("cells", sa.LargeBinary(), nullable=True))
    op.add_column("point_blocks", sa.Column("summary", sa.LargeBinary(), nullable=True))
    _backfill(op.get_bind())


def _backfill(connection: sa.Connection) -> None:
    """Summaries of every existing block, keyset-paged so memory stays one batch."""
    page = sa.text(
        "SELECT series_id, block, data FROM point_blocks "
        "WHERE series_id > :s OR (series_id = :s AND block > :b) "
        "ORDER BY series_id, block LIMIT :n"
    )
    fill = sa.text(
        "UPDATE point_blocks SET cells = :cells, summary = :summary "
        "WHERE series_id = :s AND block = :b"
    )
    after = {"s": -1, "b": -1}
    while rows := connection.execute(page, {**after, "n": _BATCH_ROWS}).fetchall():
        updates = []
        for series_id, block, data in rows:
            cells, summary = block_summaries(np.frombuffer(data, dtype=RECORD_DTYPE))
            updates.append({"s": series_id, "b": block, "cells": cells, "summary": summary})
        connection.execute(fill, updates)
        after = {"s": rows[-1][0], "b": rows[-1][1]}


def downgrade() -> None:
    op.drop_column("point_blocks", "summary")
    op.drop_column("point_blocks", "cells")
