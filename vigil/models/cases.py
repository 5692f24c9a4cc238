"""Cases: emerging situations the defence organisation's case team triages.

A case is opened by detection (a spike, a pile-on, a threat or a cross-member campaign), links the
entities and mentions that are its evidence, and moves through a small workflow. Every change is
recorded as a ``CaseEvent`` with who made it and when.

"One open case per entity and reason" is enforced by the database: each ``CaseEntity`` of an open
case holds a unique ``open_slot`` (``reason:doctor:12``), cleared when the case closes, so that two
detection passes running at once cannot both open one.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vigil.models.base import Base, BigId, utcnow
from vigil.models.register import Doctor, Practice, _enum
from vigil.models.store import Mention


class CaseReason(enum.StrEnum):
    SPIKE = "spike"
    PILE_ON = "pile_on"
    THREAT = "threat"
    CAMPAIGN = "campaign"


class CaseStatus(enum.StrEnum):
    NEW = "new"
    TRIAGED = "triaged"
    ESCALATED = "escalated"
    CLOSED = "closed"


class Severity(enum.StrEnum):
    """Ordered from least to most urgent (``Severity.rank``)."""

    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)


OPEN_STATUSES = (CaseStatus.NEW, CaseStatus.TRIAGED, CaseStatus.ESCALATED)


class Case(Base):
    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    reason: Mapped[CaseReason] = mapped_column(_enum(CaseReason, "case_reason"), index=True)
    status: Mapped[CaseStatus] = mapped_column(
        _enum(CaseStatus, "case_status"), default=CaseStatus.NEW, index=True
    )
    severity: Mapped[Severity] = mapped_column(_enum(Severity, "case_severity"))
    title: Mapped[str] = mapped_column(String(300))
    # The figures that opened it (counts, expected rate, tail probability, ...), for people and tools.
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    assignee: Mapped[str] = mapped_column(String(200), default="")
    opened_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_evidence_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column()

    entities: Mapped[list[CaseEntity]] = relationship(
        back_populates="case", cascade="all, delete-orphan", order_by="CaseEntity.id"
    )
    mentions: Mapped[list[CaseMention]] = relationship(
        back_populates="case", cascade="all, delete-orphan", order_by="CaseMention.mention_id"
    )
    events: Mapped[list[CaseEvent]] = relationship(
        back_populates="case", cascade="all, delete-orphan", order_by="CaseEvent.id"
    )

    @property
    def is_open(self) -> bool:
        return self.status is not CaseStatus.CLOSED


class CaseEntity(Base):
    """A doctor or practice a case is about."""

    __tablename__ = "case_entities"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int] = mapped_column(BigId, ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    doctor_id: Mapped[int | None] = mapped_column(ForeignKey("doctors.id", ondelete="CASCADE"), index=True)
    practice_id: Mapped[int | None] = mapped_column(
        ForeignKey("practices.id", ondelete="CASCADE"), index=True
    )
    # ``reason:doctor:12`` while the case is open, NULL once closed: unique, so one open case per
    # entity and reason (NULLs never collide, on SQLite as on PostgreSQL).
    open_slot: Mapped[str | None] = mapped_column(String(64), unique=True)

    case: Mapped[Case] = relationship(back_populates="entities")
    doctor: Mapped[Doctor | None] = relationship()
    practice: Mapped[Practice | None] = relationship()

    __table_args__ = (CheckConstraint("(doctor_id IS NULL) <> (practice_id IS NULL)", name="one_entity"),)


class CaseMention(Base):
    """A mention that is evidence in a case."""

    __tablename__ = "case_mentions"

    case_id: Mapped[int] = mapped_column(BigId, ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True)
    mention_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("mentions.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    added_at: Mapped[datetime] = mapped_column(default=utcnow)

    case: Mapped[Case] = relationship(back_populates="mentions")
    mention: Mapped[Mention] = relationship()


class CaseEvent(Base):
    """One change to a case: opened, evidence added, severity, status, assignee or a note."""

    __tablename__ = "case_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int] = mapped_column(BigId, ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(32))
    old_value: Mapped[str] = mapped_column(String(300), default="")
    new_value: Mapped[str] = mapped_column(String(300), default="")
    note: Mapped[str] = mapped_column(Text, default="")

    case: Mapped[Case] = relationship(back_populates="events")
