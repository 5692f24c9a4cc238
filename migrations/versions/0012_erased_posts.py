"""Store: posts erased on request, by digest, so that the collector does not store them again.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

import vigil.models.base
from vigil.errors import VigilError
from vigil.migrate import FORGET_ERASURES

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
    """Refuses to forget erasures silently: before 0012 nothing stops a source that shows an erased
    post again from storing it again, and upgrading again does not bring the list back."""
    erased = op.get_bind().execute(sa.text("SELECT count(*) FROM erased_posts")).scalar()
    if erased and not context.config.attributes.get(FORGET_ERASURES):
        raise VigilError(
            f"the database holds {erased} post(s) erased on request (table erased_posts), and"
            " revisions below 0012 keep no such list: an older release would store them again when a"
            " source shows them, and upgrading again would not bring the list back. To downgrade"
            " anyway, add --forget-erasures (docs/retention.md says how to keep the list and put it back)"
        )
    op.drop_table("erased_posts")
