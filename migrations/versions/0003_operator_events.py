"""Operator events: what the operator must hear about.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 07:34:02.842669
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import vigil.models.base

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "operator_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", vigil.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("notified_at", vigil.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claimed_at", vigil.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operator_events")),
    )
    with op.batch_alter_table("operator_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_operator_events_created_at"), ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("operator_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_operator_events_created_at"))

    op.drop_table("operator_events")
