"""The store: each public post stored once, the registered entities it mentions, and its labels."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vigil.labels import LABELS
from vigil.models.base import Base, BigId, utcnow
from vigil.models.register import Doctor, Practice


class Mention(Base):
    """A public post that names at least one registered doctor or practice."""

    __tablename__ = "mentions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(255))
    url: Mapped[str] = mapped_column(Text, default="")
    canonical_url: Mapped[str | None] = mapped_column(String(2048), unique=True)
    author: Mapped[str] = mapped_column(String(255), default="")
    author_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(index=True)
    collected_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    text: Mapped[str] = mapped_column(Text)
    lang: Mapped[str | None] = mapped_column(String(16))
    conversation_id: Mapped[str | None] = mapped_column(String(255))
    in_reply_to: Mapped[str | None] = mapped_column(String(255))
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Another entry at a stored post's address (one article in two doctors' Google Alerts, each
    # with its own snippet) naming someone at a practice the article had not reached: tied here.
    copy_of: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("mentions.id", ondelete="SET NULL"), index=True
    )
    # Claimed by a classifier worker (see vigil.claims): who, and since when.
    classify_claimed_by: Mapped[str | None] = mapped_column(String(64))
    classify_claimed_at: Mapped[datetime | None] = mapped_column()
    # Claimed by a case-detection pass (cases.detect), and when that pass scanned it.
    detect_claimed_by: Mapped[str | None] = mapped_column(String(64))
    detect_claimed_at: Mapped[datetime | None] = mapped_column()
    detected_at: Mapped[datetime | None] = mapped_column(index=True)

    entities: Mapped[list[MentionEntity]] = relationship(
        back_populates="mention", cascade="all, delete-orphan", order_by="MentionEntity.id"
    )
    classification: Mapped[Classification | None] = relationship(
        back_populates="mention", cascade="all, delete-orphan"
    )

    __table_args__ = (UniqueConstraint("source", "external_id"),)


class MentionEntity(Base):
    """One registered doctor or practice that a mention names, and why the match was accepted."""

    __tablename__ = "mention_entities"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    mention_id: Mapped[int] = mapped_column(BigId, ForeignKey("mentions.id", ondelete="CASCADE"), index=True)
    doctor_id: Mapped[int | None] = mapped_column(ForeignKey("doctors.id", ondelete="CASCADE"), index=True)
    practice_id: Mapped[int | None] = mapped_column(
        ForeignKey("practices.id", ondelete="CASCADE"), index=True
    )
    matched_text: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str] = mapped_column(Text, default="")
    # When the mention reached this entity: when it was collected, or later when a post seen again
    # named someone newly registered. Digests count a post in the week it reached the recipient.
    linked_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    mention: Mapped[Mention] = relationship(back_populates="entities")
    doctor: Mapped[Doctor | None] = relationship()
    practice: Mapped[Practice | None] = relationship()

    __table_args__ = (
        CheckConstraint("(doctor_id IS NULL) <> (practice_id IS NULL)", name="one_entity"),
        # Each entity linked once per mention (NULLs are distinct, so each index covers one kind).
        Index("uq_mention_entities_doctor", "mention_id", "doctor_id", unique=True),
        Index("uq_mention_entities_practice", "mention_id", "practice_id", unique=True),
    )


class Classification(Base):
    """The current labels of a mention, with every score and the model that gave them."""

    __tablename__ = "classifications"

    mention_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("mentions.id", ondelete="CASCADE"), primary_key=True
    )
    model_id: Mapped[str] = mapped_column(String(255))
    model_version: Mapped[str] = mapped_column(String(64))
    scores: Mapped[dict[str, Any]] = mapped_column(default=dict)
    threat: Mapped[bool] = mapped_column(default=False)
    abusive: Mapped[bool] = mapped_column(default=False)
    critical: Mapped[bool] = mapped_column(default=False)
    praise: Mapped[bool] = mapped_column(default=False)
    classified_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # Routing has still to see these labels (or the mention's new links). Whatever writes labels
    # sets it, in the same statement; routing clears it as it takes the mention, under the lock.
    # An index on the pending rows alone lets routing find them without reading the history.
    routing_pending: Mapped[bool] = mapped_column(default=True, server_default=true())

    mention: Mapped[Mention] = relationship(back_populates="classification")

    __table_args__ = (Index("ix_classifications_model", "model_id", "model_version"),)

    @property
    def labels(self) -> list[str]:
        return [label for label in LABELS if getattr(self, label)]


# The pending classifications in routing order, and only those: a few pages, however long the
# history. Each condition is written as SQLAlchemy writes ``WHERE routing_pending`` in a query on
# that database (``= 1`` on SQLite), as SQLite uses a partial index only for the very same term.
Index(
    "ix_classifications_routing_pending",
    Classification.classified_at,
    Classification.mention_id,
    postgresql_where=Classification.routing_pending,
    sqlite_where=Classification.routing_pending == true(),
)


class ErasedPost(Base):
    """A post erased on request (``vigil mentions forget``), kept as a digest of its id on its
    source or of its address: a feed that still lists it, or a file imported again, must not bring
    it back. Only digests, so that the list does not itself keep what was erased."""

    __tablename__ = "erased_posts"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    erased_at: Mapped[datetime] = mapped_column(default=utcnow)
