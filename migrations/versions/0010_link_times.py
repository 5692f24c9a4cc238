"""Store: when each mention reached each doctor or practice (``mention_entities.linked_at``).

Digests count a post in the week it reached the recipient, so that a post collected late, or
linked later to someone newly registered, is in a digest. Existing links take the time their
mention was collected (so a post written before the week of the upgrade but collected in it is
counted in that week, even if an earlier digest counted it by its posting time).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import vigil.models.base

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("mention_entities", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("linked_at", vigil.models.base.UTCDateTime(timezone=True), nullable=True)
        )
    op.execute(
        "UPDATE mention_entities SET linked_at ="
        " (SELECT collected_at FROM mentions WHERE mentions.id = mention_entities.mention_id)"
    )
    with op.batch_alter_table("mention_entities", schema=None) as batch_op:
        batch_op.alter_column(
            "linked_at", existing_type=vigil.models.base.UTCDateTime(timezone=True), nullable=False
        )
        batch_op.create_index(batch_op.f("ix_mention_entities_linked_at"), ["linked_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("mention_entities", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mention_entities_linked_at"))
        batch_op.drop_column("linked_at")
