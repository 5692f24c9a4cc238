"""Alerts: routed mentions, alerts and their mentions, and the email outbox.

Revision ID: 0006
Revises: 0003
Create Date: 2026-11-24 07:52:58.883454
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import vigil.models.base

revision = "0006"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "routed_mentions",
        sa.Column("mention_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("classified_at", vigil.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("routed_at", vigil.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["mention_id"],
            ["mentions.id"],
            name=op.f("fk_routed_mentions_mention_id_mentions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("mention_id", name=op.f("pk_routed_mentions")),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("recipient_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=16), nullable=False),
        sa.Column("doctor_id", sa.Integer(), nullable=True),
        sa.Column("practice_id", sa.Integer(), nullable=True),
        sa.Column("follow_up", sa.Boolean(), nullable=False),
        sa.Column("opened_at", vigil.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("window_ends_at", vigil.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("due_at", vigil.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("enqueued_at", vigil.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("(doctor_id IS NULL) <> (practice_id IS NULL)", name=op.f("ck_alerts_one_entity")),
        sa.ForeignKeyConstraint(
            ["doctor_id"], ["doctors.id"], name=op.f("fk_alerts_doctor_id_doctors"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["practice_id"],
            ["practices.id"],
            name=op.f("fk_alerts_practice_id_practices"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["recipient_id"],
            ["recipients.id"],
            name=op.f("fk_alerts_recipient_id_recipients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint("id", "recipient_id", name=op.f("uq_alerts_id_recipient_id")),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alerts_doctor_id"), ["doctor_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_alerts_enqueued_at"), ["enqueued_at"], unique=False)
        batch_op.create_index("ix_alerts_group", ["recipient_id", "label", "window_ends_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_alerts_practice_id"), ["practice_id"], unique=False)

    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("recipient_email", sa.String(length=320), nullable=False),
        sa.Column("recipient_id", sa.Integer(), nullable=True),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending", "sending", "sent", "failed", name="outbox_status", native_enum=False, length=16
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", vigil.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("created_at", vigil.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", vigil.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claimed_at", vigil.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["recipient_id"],
            ["recipients.id"],
            name=op.f("fk_outbox_recipient_id_recipients"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("key", name=op.f("uq_outbox_key")),
        sa.UniqueConstraint("message_id", name=op.f("uq_outbox_message_id")),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_due", ["status", "next_attempt_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbox_recipient_id"), ["recipient_id"], unique=False)

    op.create_table(
        "alert_mentions",
        sa.Column("alert_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("mention_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("recipient_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id", "recipient_id"],
            ["alerts.id", "alerts.recipient_id"],
            name=op.f("fk_alert_mentions_alert_id_alerts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["mention_id"],
            ["mentions.id"],
            name=op.f("fk_alert_mentions_mention_id_mentions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("alert_id", "mention_id", name=op.f("pk_alert_mentions")),
        sa.UniqueConstraint(
            "recipient_id", "mention_id", name=op.f("uq_alert_mentions_recipient_id_mention_id")
        ),
    )
    with op.batch_alter_table("alert_mentions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_mentions_mention_id"), ["mention_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("alert_mentions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_mentions_mention_id"))

    op.drop_table("alert_mentions")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_recipient_id"))
        batch_op.drop_index("ix_outbox_due")

    op.drop_table("outbox")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alerts_practice_id"))
        batch_op.drop_index("ix_alerts_group")
        batch_op.drop_index(batch_op.f("ix_alerts_enqueued_at"))
        batch_op.drop_index(batch_op.f("ix_alerts_doctor_id"))

    op.drop_table("alerts")
    op.drop_table("routed_mentions")
