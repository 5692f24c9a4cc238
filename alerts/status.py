"""``vigil status``: what routing has still to see, alerts waiting for their window, and digests.

The operator's questions: are threats reaching people (nothing stuck before routing, alerts
going out), and did last week's digests go (how many, and when the next are due).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from alerts.config import load_config
from alerts.routing import UNROUTED
from alerts.weeks import Week, scheduled_time
from vigil.clock import sortable_time
from vigil.models import Alert, Mention, OutboxMessage, RoutedMention, utcnow
from vigil.runtime import Runtime


def alerts_section(
    runtime: Runtime, session: Session, now: datetime | None = None
) -> tuple[str, list[tuple[str, str]]]:
    config = load_config(runtime.settings)
    now = now or utcnow()
    unrouted = session.scalar(
        select(func.count())
        .select_from(Mention)
        .join(Mention.classification)
        .outerjoin(RoutedMention, RoutedMention.mention_id == Mention.id)
        .where(UNROUTED)
    )
    waiting = session.scalar(select(func.count()).select_from(Alert).where(Alert.enqueued_at.is_(None)))
    sent = session.scalar(
        select(func.count()).select_from(Alert).where(Alert.enqueued_at >= now - timedelta(days=7))
    )
    rows = [
        ("Awaiting routing", str(unrouted or 0)),
        ("Grouped alerts waiting for their window", str(waiting or 0)),
        ("Immediate alerts, last 7 days", str(sent or 0)),
        ("Last digests", last_digests(session)),
    ]
    digest = config.digest
    sending = Week.containing(now, digest.timezone)
    due = scheduled_time(sending, digest.weekday, digest.time, digest.timezone)
    if due <= now:
        sending = sending.next()
        due = scheduled_time(sending, digest.weekday, digest.time, digest.timezone)
    rows.append(("Next digests", f"{sending.previous()}, due {sortable_time(due, digest.timezone)}"))
    return "Alerts and digests", rows


def last_digests(session: Session) -> str:
    """The latest week digests were built for (keys ``digest:r{recipient}:{week}``), and how many."""
    latest = session.scalar(
        select(OutboxMessage.key)
        .where(OutboxMessage.kind == "digest")
        .order_by(OutboxMessage.id.desc())
        .limit(1)
    )
    if latest is None:
        return "none yet"
    week = latest.rsplit(":", 1)[1]
    count = session.scalar(
        select(func.count()).where(OutboxMessage.kind == "digest", OutboxMessage.key.like(f"digest:%:{week}"))
    )
    return f"{week}: {count} built"
