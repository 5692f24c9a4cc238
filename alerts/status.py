"""``vigil status``: what routing has still to see, alerts waiting for their window, and digests.

The operator's questions: are threats reaching people (nothing stuck before routing, alerts
going out), and did last week's digests go (how many, and when the next are due).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from alerts.config import AlertsConfig, load_config
from alerts.weeks import CATCH_UP, Week, due_week, scheduled_time
from vigil.clock import sortable_time
from vigil.models import Alert, Classification, OutboxMessage, utcnow
from vigil.runtime import Runtime


def alerts_section(
    runtime: Runtime, session: Session, now: datetime | None = None
) -> tuple[str, list[tuple[str, str]]]:
    config = load_config(runtime.settings)
    now = now or utcnow()
    unrouted = session.scalar(
        select(func.count()).select_from(Classification).where(Classification.routing_pending)
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
    rows.append(("Next digests", next_digests(session, config, now)))
    return "Alerts and digests", rows


def next_digests(session: Session, config: AlertsConfig, now: datetime) -> str:
    """The week whose digests come next: one still in its day of catch-up if none is built yet."""
    digest = config.digest
    overdue = due_week(now, digest.weekday, digest.time, digest.timezone)
    if overdue is not None and not digests_built(session, str(overdue)):
        since = scheduled_time(overdue.next(), digest.weekday, digest.time, digest.timezone)
        begun, until = (sortable_time(moment, digest.timezone) for moment in (since, since + CATCH_UP))
        return f"{overdue}, due since {begun} (none built yet; `vigil run` builds them until {until})"
    sending = Week.containing(now, digest.timezone)
    due = scheduled_time(sending, digest.weekday, digest.time, digest.timezone)
    if due <= now:
        sending = sending.next()
        due = scheduled_time(sending, digest.weekday, digest.time, digest.timezone)
    return f"{sending.previous()}, due {sortable_time(due, digest.timezone)}"


def digests_built(session: Session, week: str) -> int:
    """How many digests were built for ``week`` (their keys are ``digest:r{recipient}:{week}``)."""
    key = OutboxMessage.key.like(f"digest:%:{week}")
    return session.scalar(select(func.count()).where(OutboxMessage.kind == "digest", key)) or 0


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
    return f"{week}: {digests_built(session, week)} built"
