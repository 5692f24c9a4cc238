"""Raising operator events: logged at error level at once, and stored so that they are emailed."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from vigil.models.ops import OperatorEvent

log = logging.getLogger("vigil.operator")

SUBJECT_LENGTH = 255  # the column's; a subject may name a feed's URL, which has no limit


def _fit(text: str, length: int) -> str:
    """Cut to the column, so that PostgreSQL never refuses the event (and the work it reports on)."""
    return text if len(text) <= length else text[: length - 1] + "…"


def raise_operator_event(
    session: Session, kind: str, subject: str, message: str, level: int = logging.ERROR
) -> OperatorEvent:
    """Record an event for the operator (in the caller's transaction) and log it (at ``level``:
    a record kept for accountability, such as an erasure, is no error)."""
    log.log(level, "%s: %s", subject or kind, message, extra={"event_kind": kind})
    event = OperatorEvent(kind=kind, subject=_fit(subject, SUBJECT_LENGTH), message=message)
    session.add(event)
    return event
