"""Collector: each source's checkpoint and health.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 08:09:26.620911
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import vigil.models.base

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "source_states",
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("checkpoint", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("checkpoint_at", vigil.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_attempt_at", vigil.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", vigil.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("last_error_at", vigil.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("retry_after", vigil.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("alerted_at", vigil.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("posts_read", sa.Integer(), nullable=False),
        sa.Column("mentions_stored", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_source_states")),
    )


def downgrade() -> None:
    op.drop_table("source_states")
