"""Alerts and delivery: which mentions were routed, the alerts they raised, and the email outbox.

Exactly-once is enforced by unique keys, not only by logic: a mention joins at most one alert per
recipient (``alert_mentions``), and every email is stored once under its idempotency key
(``outbox.key``) before any attempt to send it.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    Enum,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vigil.models.base import Base, BigId, utcnow
from vigil.models.register import Doctor, Practice, Recipient
from vigil.models.store import Mention


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class RoutedMention(Base):
    """A classified mention the alerts step has already routed, and which classification it saw."""

    __tablename__ = "routed_mentions"

    mention_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("mentions.id", ondelete="CASCADE"), primary_key=True
    )
    # When the classifier relabels a mention, it is routed again (new recipients only); the
    # collector deletes the row when it links the mention to someone new, for the same reason.
    # Routing finds both by ``Classification.routing_pending``, which they set.
    classified_at: Mapped[datetime] = mapped_column()
    routed_at: Mapped[datetime] = mapped_column(default=utcnow)


class Alert(Base):
    """One immediate email to one recipient about one entity: a single post or a group of them.

    Grouped labels open a window: the first post is alerted at once, later ones in the window are
    gathered into one follow-up alert that is due when the window closes.
    """

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    recipient_id: Mapped[int] = mapped_column(ForeignKey("recipients.id", ondelete="CASCADE"))
    label: Mapped[str] = mapped_column(String(16))
    doctor_id: Mapped[int | None] = mapped_column(ForeignKey("doctors.id", ondelete="CASCADE"), index=True)
    practice_id: Mapped[int | None] = mapped_column(
        ForeignKey("practices.id", ondelete="CASCADE"), index=True
    )
    follow_up: Mapped[bool] = mapped_column(default=False)
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    window_ends_at: Mapped[datetime] = mapped_column()
    due_at: Mapped[datetime] = mapped_column()
    enqueued_at: Mapped[datetime | None] = mapped_column(index=True)

    recipient: Mapped[Recipient] = relationship()
    doctor: Mapped[Doctor | None] = relationship()
    practice: Mapped[Practice | None] = relationship()
    items: Mapped[list[AlertMention]] = relationship(
        back_populates="alert", cascade="all, delete-orphan", order_by="AlertMention.mention_id"
    )

    __table_args__ = (
        CheckConstraint("(doctor_id IS NULL) <> (practice_id IS NULL)", name="one_entity"),
        UniqueConstraint("id", "recipient_id"),
        Index("ix_alerts_group", "recipient_id", "label", "window_ends_at"),
    )


class AlertMention(Base):
    """A mention in an alert. Unique per recipient: a mention never triggers two alerts to anyone."""

    __tablename__ = "alert_mentions"

    alert_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    mention_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("mentions.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    recipient_id: Mapped[int] = mapped_column()

    alert: Mapped[Alert] = relationship(back_populates="items")
    mention: Mapped[Mention] = relationship()

    __table_args__ = (
        # The recipient is copied from the alert (and kept equal by this key) so that the
        # unique constraint below can say "one alert per mention per recipient".
        ForeignKeyConstraint(
            ["alert_id", "recipient_id"], ["alerts.id", "alerts.recipient_id"], ondelete="CASCADE"
        ),
        UniqueConstraint("recipient_id", "mention_id"),
    )


class OutboxMessage(Base):
    """A rendered email, stored under its idempotency key before any attempt to send it."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    priority: Mapped[int] = mapped_column(default=1)
    recipient_email: Mapped[str] = mapped_column(String(320))
    recipient_id: Mapped[int | None] = mapped_column(
        ForeignKey("recipients.id", ondelete="SET NULL"), index=True
    )
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    subject: Mapped[str] = mapped_column(Text)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[OutboxStatus] = mapped_column(
        Enum(
            OutboxStatus,
            name="outbox_status",
            native_enum=False,
            length=16,
            values_callable=lambda e: [m.value for m in e],
        ),
        default=OutboxStatus.PENDING,
    )
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column()
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)
