"""Store: posts erased on request, by digest, so that the collector does not store them again.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import vigil.models.base

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "erased_posts",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("erased_at", vigil.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_erased_posts")),
    )


def downgrade() -> None:
    op.drop_table("erased_posts")
