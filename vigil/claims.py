"""Claiming work in the database, so that a step run twice at once (or on two workers) does no harm.

A worker marks rows as its own with one conditional UPDATE (``... WHERE claimed_by IS NULL OR
the claim is stale``) and then reads back what it got. On PostgreSQL the candidate rows are
picked with ``FOR UPDATE SKIP LOCKED`` so that workers do not queue behind each other. A claim
older than the lease is considered abandoned (its worker crashed) and can be taken again.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select, text, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from vigil.models.base import utcnow


def worker_token() -> str:
    """A token naming this worker and this claim: host, process and a random part."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def claim(
    session: Session,
    model: type[Any],
    *,
    pending: ColumnElement[bool],
    claimed_by: InstrumentedAttribute[Any],
    claimed_at: InstrumentedAttribute[Any],
    limit: int,
    lease: timedelta = timedelta(minutes=10),
    order_by: Any = None,
) -> tuple[str, list[int]]:
    """Claim up to ``limit`` pending rows of ``model``; return the claim token and their ids.

    The caller commits. Rows whose claim is older than ``lease`` are taken over.
    """
    token = worker_token()
    now = utcnow()
    claimable = and_(pending, or_(claimed_by.is_(None), claimed_at < now - lease))
    candidates = select(model.id).where(claimable).order_by(order_by or model.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    ids = list(session.scalars(candidates))
    if not ids:
        return token, []
    session.execute(
        update(model)
        .where(model.id.in_(ids), claimable)
        .values({claimed_by.key: token, claimed_at.key: now})
        .execution_options(synchronize_session=False)
    )
    mine = list(session.scalars(select(model.id).where(claimed_by == token).order_by(model.id)))
    return token, mine


def release(
    session: Session,
    model: type[Any],
    ids: list[int],
    claimed_by: InstrumentedAttribute[Any],
    claimed_at: InstrumentedAttribute[Any],
) -> None:
    """Give rows back (after a failure) so that another pass can take them at once."""
    if ids:
        session.execute(
            update(model)
            .where(model.id.in_(ids))
            .values({claimed_by.key: None, claimed_at.key: None})
            .execution_options(synchronize_session=False)
        )


_ROUTING_LOCK = 0x5619_A1E7  # PostgreSQL advisory lock key: one routing pass at a time


def lock_routing(session: Session) -> None:
    """Serialise routing passes and the collector's storing of posts (which can link a routed
    mention to someone new), for this transaction (SQLite's BEGIN IMMEDIATE already does)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ROUTING_LOCK})
