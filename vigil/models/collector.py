"""The collector's own state: where each source has read up to, and how its polls are going."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from vigil.models.base import Base


class SourceState(Base):
    """One row per source: its checkpoint (committed with the posts it covers) and its health.

    ``version`` grows with every checkpoint write; a writer only succeeds if it still holds the
    version it read, so two collectors running the same source at once cannot move a checkpoint
    backwards or store a batch twice.
    """

    __tablename__ = "source_states"

    source: Mapped[str] = mapped_column(String(32), primary_key=True)
    checkpoint: Mapped[dict[str, Any]] = mapped_column(default=dict)
    version: Mapped[int] = mapped_column(default=0)
    checkpoint_at: Mapped[datetime | None] = mapped_column()
    last_attempt_at: Mapped[datetime | None] = mapped_column()
    last_success_at: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str] = mapped_column(Text, default="")
    last_error_at: Mapped[datetime | None] = mapped_column()
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    # A rate limit or similar: the source is not polled again before this time.
    retry_after: Mapped[datetime | None] = mapped_column()
    # When the operator was told this source is failing; cleared when it recovers.
    alerted_at: Mapped[datetime | None] = mapped_column()
    posts_read: Mapped[int] = mapped_column(default=0)
    mentions_stored: Mapped[int] = mapped_column(default=0)
