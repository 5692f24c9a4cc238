"""Operator events (a source failing, raised by the collector) emailed to the operator address.

Events waiting when a pass runs go out together in one email, so a flapping source does not
flood the operator's inbox. Events are claimed, enqueued and marked notified in one transaction.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from alerts.config import AlertsConfig
from alerts.emails import operator_email
from alerts.outbox import URGENT, enqueue
from vigil.claims import claim
from vigil.models import OperatorEvent

MAX_EVENTS = 50


def notify_operator(session: Session, config: AlertsConfig, now: datetime) -> int:
    """Enqueue one email for the events not yet notified; return how many it reports."""
    address = config.email.operator_address
    if not address:
        return 0  # they were logged when raised; nowhere to email them
    _, ids = claim(
        session,
        OperatorEvent,
        pending=OperatorEvent.notified_at.is_(None),
        claimed_by=OperatorEvent.claimed_by,
        claimed_at=OperatorEvent.claimed_at,
        limit=MAX_EVENTS,
    )
    if not ids:
        return 0
    events = list(
        session.scalars(select(OperatorEvent).where(OperatorEvent.id.in_(ids)).order_by(OperatorEvent.id))
    )
    email = operator_email(config, events)
    enqueue(
        session,
        config.email,
        key=f"operator:e{ids[0]}",
        kind="operator",
        recipient_email=address,
        recipient_name="Vigil operator",
        subject=email.subject,
        text=email.text,
        html=email.html,
        priority=URGENT,
        now=now,
    )
    session.execute(
        update(OperatorEvent)
        .where(OperatorEvent.id.in_(ids))
        .values(notified_at=now, claimed_by=None, claimed_at=None)
        .execution_options(synchronize_session=False)
    )
    return len(ids)
