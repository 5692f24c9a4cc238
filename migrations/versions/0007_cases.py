"""Cases: emerging cases with their entities, evidence and history; mentions get a detection claim.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 08:01:51.280294
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import vigil.models.base

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "reason",
            sa.Enum(
                "spike", "pile_on", "threat", "campaign", name="case_reason", native_enum=False, length=16
            ),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "new", "triaged", "escalated", "closed", name="case_status", native_enum=False, length=16
            ),
            nullable=False,
        ),
        sa.Column(
            "severity",
            sa.Enum("medium", "high", "critical", name="case_severity", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("assignee", sa.String(length=200), nullable=False),
        sa.Column("opened_at", vigil.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", vigil.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_evidence_at", vigil.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("closed_at", vigil.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cases")),
    )
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cases_opened_at"), ["opened_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_cases_reason"), ["reason"], unique=False)
        batch_op.create_index(batch_op.f("ix_cases_status"), ["status"], unique=False)

    op.create_table(
        "case_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("case_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", vigil.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("old_value", sa.String(length=300), nullable=False),
        sa.Column("new_value", sa.String(length=300), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_case_events_case_id_cases"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_events")),
    )
    with op.batch_alter_table("case_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_events_case_id"), ["case_id"], unique=False)

    op.create_table(
        "case_mentions",
        sa.Column("case_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("mention_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("added_at", vigil.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_case_mentions_case_id_cases"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["mention_id"],
            ["mentions.id"],
            name=op.f("fk_case_mentions_mention_id_mentions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("case_id", "mention_id", name=op.f("pk_case_mentions")),
    )
    with op.batch_alter_table("case_mentions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_mentions_mention_id"), ["mention_id"], unique=False)

    op.create_table(
        "case_entities",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("case_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("doctor_id", sa.Integer(), nullable=True),
        sa.Column("practice_id", sa.Integer(), nullable=True),
        sa.Column("open_slot", sa.String(length=64), nullable=True),
        sa.CheckConstraint(
            "(doctor_id IS NULL) <> (practice_id IS NULL)", name=op.f("ck_case_entities_one_entity")
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_case_entities_case_id_cases"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["doctor_id"], ["doctors.id"], name=op.f("fk_case_entities_doctor_id_doctors"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["practice_id"],
            ["practices.id"],
            name=op.f("fk_case_entities_practice_id_practices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_entities")),
        sa.UniqueConstraint("open_slot", name=op.f("uq_case_entities_open_slot")),
    )
    with op.batch_alter_table("case_entities", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_entities_case_id"), ["case_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_case_entities_doctor_id"), ["doctor_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_case_entities_practice_id"), ["practice_id"], unique=False)

    with op.batch_alter_table("mentions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("detect_claimed_by", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("detect_claimed_at", vigil.models.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("detected_at", vigil.models.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_index(batch_op.f("ix_mentions_detected_at"), ["detected_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("mentions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mentions_detected_at"))
        batch_op.drop_column("detected_at")
        batch_op.drop_column("detect_claimed_at")
        batch_op.drop_column("detect_claimed_by")

    with op.batch_alter_table("case_entities", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_entities_practice_id"))
        batch_op.drop_index(batch_op.f("ix_case_entities_doctor_id"))
        batch_op.drop_index(batch_op.f("ix_case_entities_case_id"))

    op.drop_table("case_entities")
    with op.batch_alter_table("case_mentions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_mentions_mention_id"))

    op.drop_table("case_mentions")
    with op.batch_alter_table("case_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_events_case_id"))

    op.drop_table("case_events")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cases_status"))
        batch_op.drop_index(batch_op.f("ix_cases_reason"))
        batch_op.drop_index(batch_op.f("ix_cases_opened_at"))

    op.drop_table("cases")
