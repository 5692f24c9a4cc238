"""Alerts: which classifications routing has still to see, marked and indexed (``routing_pending``).

Routing found them by joining every classification to ``routed_mentions``, which read the whole
history once a minute. Those it has not routed, or routed with older labels, are marked pending;
no others.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

classifications = sa.table(
    "classifications", sa.column("mention_id"), sa.column("classified_at"), sa.column("routing_pending")
)
routed = sa.table("routed_mentions", sa.column("mention_id"), sa.column("classified_at"))


def upgrade() -> None:
    with op.batch_alter_table("classifications", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("routing_pending", sa.Boolean(), server_default=sa.true(), nullable=False)
        )
    routed_with_these_labels = sa.exists().where(
        routed.c.mention_id == classifications.c.mention_id,
        routed.c.classified_at >= classifications.c.classified_at,
    )
    op.execute(classifications.update().where(routed_with_these_labels).values(routing_pending=sa.false()))
    op.create_index(
        "ix_classifications_routing_pending",
        "classifications",
        ["classified_at", "mention_id"],
        postgresql_where=sa.text("routing_pending"),
        sqlite_where=sa.text("routing_pending = 1"),  # as queries say it there (vigil.models.store)
    )


def downgrade() -> None:
    op.drop_index("ix_classifications_routing_pending", table_name="classifications")
    with op.batch_alter_table("classifications", schema=None) as batch_op:
        batch_op.drop_column("routing_pending")
