"""Store: mentions, the entities they name, and their classifications.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import vigil.models.base

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mentions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("canonical_url", sa.String(length=2048), nullable=True),
        sa.Column("author", sa.String(length=255), nullable=False),
        sa.Column("author_id", sa.String(length=255), nullable=True),
        sa.Column("created_at", vigil.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("collected_at", vigil.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("lang", sa.String(length=16), nullable=True),
        sa.Column("conversation_id", sa.String(length=255), nullable=True),
        sa.Column("in_reply_to", sa.String(length=255), nullable=True),
        sa.Column("extra", sa.JSON(), nullable=False),
        sa.Column("classify_claimed_by", sa.String(length=64), nullable=True),
        sa.Column("classify_claimed_at", vigil.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mentions")),
        sa.UniqueConstraint("canonical_url", name=op.f("uq_mentions_canonical_url")),
        sa.UniqueConstraint("source", "external_id", name=op.f("uq_mentions_source_external_id")),
    )

    with op.batch_alter_table("mentions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mentions_collected_at"), ["collected_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_mentions_created_at"), ["created_at"], unique=False)

    op.create_table(
        "mention_entities",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("mention_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("doctor_id", sa.Integer(), nullable=True),
        sa.Column("practice_id", sa.Integer(), nullable=True),
        sa.Column("matched_text", sa.String(length=255), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "(doctor_id IS NULL) <> (practice_id IS NULL)",
            name=op.f("ck_mention_entities_one_entity"),
        ),
        sa.ForeignKeyConstraint(
            ["doctor_id"],
            ["doctors.id"],
            name=op.f("fk_mention_entities_doctor_id_doctors"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["mention_id"],
            ["mentions.id"],
            name=op.f("fk_mention_entities_mention_id_mentions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["practice_id"],
            ["practices.id"],
            name=op.f("fk_mention_entities_practice_id_practices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mention_entities")),
    )

    with op.batch_alter_table("mention_entities", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mention_entities_doctor_id"), ["doctor_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_mention_entities_mention_id"), ["mention_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_mention_entities_practice_id"), ["practice_id"], unique=False)

    op.create_table(
        "classifications",
        sa.Column("mention_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("model_id", sa.String(length=255), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("scores", sa.JSON(), nullable=False),
        sa.Column("threat", sa.Boolean(), nullable=False),
        sa.Column("abusive", sa.Boolean(), nullable=False),
        sa.Column("critical", sa.Boolean(), nullable=False),
        sa.Column("praise", sa.Boolean(), nullable=False),
        sa.Column("classified_at", vigil.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["mention_id"],
            ["mentions.id"],
            name=op.f("fk_classifications_mention_id_mentions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("mention_id", name=op.f("pk_classifications")),
    )

    with op.batch_alter_table("classifications", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_classifications_classified_at"), ["classified_at"], unique=False)
        batch_op.create_index("ix_classifications_model", ["model_id", "model_version"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("classifications", schema=None) as batch_op:
        batch_op.drop_index("ix_classifications_model")
        batch_op.drop_index(batch_op.f("ix_classifications_classified_at"))

    op.drop_table("classifications")

    with op.batch_alter_table("mention_entities", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mention_entities_practice_id"))
        batch_op.drop_index(batch_op.f("ix_mention_entities_mention_id"))
        batch_op.drop_index(batch_op.f("ix_mention_entities_doctor_id"))

    op.drop_table("mention_entities")

    with op.batch_alter_table("mentions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mentions_created_at"))
        batch_op.drop_index(batch_op.f("ix_mentions_collected_at"))

    op.drop_table("mentions")
