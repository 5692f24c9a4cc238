"""Operator events: things the person running Vigil must hear about (a source failing, a budget spent)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from vigil.models.base import Base, BigId, utcnow


class OperatorEvent(Base):
    """Stored when raised, then emailed to the operator address by the alerts step (claimed, once)."""

    __tablename__ = "operator_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(255), default="")
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    notified_at: Mapped[datetime | None] = mapped_column()
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime | None] = mapped_column()
