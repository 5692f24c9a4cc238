"""Raising operator events: logged at error level at once, and stored so that they are emailed."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from vigil.models.ops import OperatorEvent

log = logging.getLogger("vigil.operator")


def raise_operator_event(session: Session, kind: str, subject: str, message: str) -> OperatorEvent:
    """Record an event for the operator (in the caller's transaction) and log it."""
    log.error("%s: %s", subject or kind, message, extra={"event_kind": kind})
    event = OperatorEvent(kind=kind, subject=subject, message=message)
    session.add(event)
    return event
