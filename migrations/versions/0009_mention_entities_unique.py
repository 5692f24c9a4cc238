"""Store: each doctor or practice linked to a mention once, so copies of a post can add links safely.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
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


def downgrade() -> None:
    op.drop_index("uq_mention_entities_practice", table_name="mention_entities")
    op.drop_index("uq_mention_entities_doctor", table_name="mention_entities")
