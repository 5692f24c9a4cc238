"""Store: each doctor or practice linked to a mention once; copies of a post at one address.

Another entry at a stored post's address that names someone new (one article in two doctors'
Google Alerts) is its own mention, tied to the first by ``copy_of`` (see ``collector.store``).
RSS mentions lose the author they took from a Google Alert's feed title, which names whom the
alert watches (another practice linked to the post must not see it); the downgrade keeps that.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("UPDATE mentions SET author = '' WHERE source = 'rss' AND author LIKE 'Google Alert - %'")
    op.execute(
        "DELETE FROM mention_entities WHERE id NOT IN"
        " (SELECT min(id) FROM mention_entities GROUP BY mention_id, doctor_id, practice_id)"
    )
    op.create_index(
        "uq_mention_entities_doctor", "mention_entities", ["mention_id", "doctor_id"], unique=True
    )
    op.create_index(
        "uq_mention_entities_practice", "mention_entities", ["mention_id", "practice_id"], unique=True
    )
    with op.batch_alter_table("mentions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("copy_of", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True)
        )
        batch_op.create_index(batch_op.f("ix_mentions_copy_of"), ["copy_of"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_mentions_copy_of_mentions"), "mentions", ["copy_of"], ["id"], ondelete="SET NULL"
        )


def downgrade() -> None:
    with op.batch_alter_table("mentions", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_mentions_copy_of_mentions"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_mentions_copy_of"))
        batch_op.drop_column("copy_of")
    op.drop_index("uq_mention_entities_practice", table_name="mention_entities")
    op.drop_index("uq_mention_entities_doctor", table_name="mention_entities")
