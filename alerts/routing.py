"""Routing: which classified mentions are emailed at once, to whom, and grouped so a pile-on is one email.

The ``alerts.immediate`` setting names the labels that go out at once and their audiences:
``entity`` (the recipients of the doctor and of their practice, via ``recipients_for_entity``)
and ``organisation`` (the defence organisation). Everything else waits for the weekly digest.
A recipient gets an immediate alert only if they want them and the label is one of their
categories; a mention gets the most serious label that applies to that recipient.

For grouped labels (``alerts.group_labels``), the first post about an entity is alerted at once
and opens a window (``alerts.group_window_minutes``); later posts about it in that window join a
single follow-up alert, sent when the window closes. At most two emails per window, however
many posts.

A mention joins at most one alert per recipient: ``alert_mentions`` has a unique key on
(recipient, mention), and routing runs one pass at a time (PostgreSQL advisory lock; SQLite
write lock), each batch in one transaction with the alerts and their outbox rows.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import Session, contains_eager, selectinload

from alerts.config import AlertsConfig
from alerts.emails import alert_email
from alerts.outbox import URGENT, enqueue_email
from vigil.labels import LABELS
from vigil.models import (
    Alert,
    AlertMention,
    Classification,
    Mention,
    MentionEntity,
    Recipient,
    RoutedMention,
    Scope,
)
from vigil.scope import recipients_for_entity

log = logging.getLogger(__name__)

BATCH = 200
SCAN = 50 * BATCH  # pending mentions found by one read of the pending index


@dataclass
class RoutingReport:
    routed: int = 0
    alerted: int = 0
    emails: int = 0

    def add(self, other: RoutingReport) -> None:
        self.routed += other.routed
        self.alerted += other.alerted
        self.emails += other.emails


def pending_mentions(session: Session, limit: int = SCAN) -> list[int]:
    """The ids of up to ``limit`` classified mentions that are new or relabelled, in routing order.

    They are marked (``Classification.routing_pending``) and indexed apart from the rest, so
    finding them reads as many rows as there are pending, however long the history."""
    return list(
        session.scalars(
            select(Classification.mention_id)
            .where(Classification.routing_pending)
            .order_by(Classification.classified_at, Classification.mention_id)
            .limit(limit)
        )
    )


def route_batch(
    session: Session, config: AlertsConfig, now: datetime, ids: Collection[int] | None = None
) -> RoutingReport:
    """Route the first BATCH classified mentions that are new or relabelled (or, if given, those of
    ``ids`` still pending: another transaction may have changed them since they were found); the
    caller holds the routing lock and commits."""
    report = RoutingReport()
    taken = take_pending(session, ids)
    rows = session.execute(
        select(Mention, RoutedMention)
        .join(Mention.classification)
        .outerjoin(RoutedMention, RoutedMention.mention_id == Mention.id)
        .where(Mention.id.in_(taken))
        .order_by(Classification.classified_at, Mention.id)
        .options(contains_eager(Mention.classification), selectinload(Mention.entities))
    ).all()
    for mention, routed in rows:
        classification = mention.classification
        assert classification is not None
        if routed is None:
            session.add(
                RoutedMention(
                    mention_id=mention.id, classified_at=classification.classified_at, routed_at=now
                )
            )
        else:
            routed.classified_at, routed.routed_at = classification.classified_at, now
        report.alerted += _route_mention(
            session, config, mention, classification.labels, now, first=routed is None
        )
        report.routed += 1
    return report


def take_pending(session: Session, ids: Collection[int] | None) -> list[int]:
    """Clear the pending mark of those of ``ids`` still pending (without ids, of the first BATCH
    pending) and return them.

    Clearing it before the labels are read is what keeps a relabel from being lost. On PostgreSQL
    the UPDATE holds these rows until the batch commits: a relabel committed before it is the
    one read next, and one after it waits, then marks the mention pending again for the next pass.
    On SQLite the batch holds the write lock throughout, so nothing can come between."""
    chosen = (
        list(ids)
        if ids is not None
        else select(Classification.mention_id)
        .where(Classification.routing_pending)
        .order_by(Classification.classified_at, Classification.mention_id)
        .limit(BATCH)
    )
    return list(
        session.scalars(
            update(Classification)
            .where(Classification.mention_id.in_(chosen), Classification.routing_pending)
            .values(routing_pending=False)
            .returning(Classification.mention_id)
            .execution_options(synchronize_session=False)
        )
    )


def _route_mention(
    session: Session, config: AlertsConfig, mention: Mention, labels: list[str], now: datetime, first: bool
) -> int:
    age = _age(mention, now, first)
    urgent = [label for label in LABELS if label in labels and label in config.immediate]
    timely = [
        label
        for label in urgent
        if age <= (max(config.threat_max_age, config.max_age) if label == "threat" else config.max_age)
    ]
    if urgent and not timely:
        log.info("mention %d is too old for an immediate alert; it goes in the digest", mention.id)
    if not timely:
        return 0
    urgent = timely
    already = set(
        session.scalars(select(AlertMention.recipient_id).where(AlertMention.mention_id == mention.id))
    )
    count = 0
    for entity in mention.entities:
        for recipient, label in _audience(session, config, entity, urgent):
            if recipient.id in already:
                continue
            already.add(recipient.id)
            alert = _alert_for(session, config, recipient, entity, label, now)
            alert.items.append(AlertMention(mention_id=mention.id, recipient_id=recipient.id))
            count += 1
    return count


def _age(mention: Mention, now: datetime, first: bool) -> timedelta:
    """How late Vigil is with this post, which decides whether it is still worth an immediate alert.

    The first time, that is how old it was when found: a post found at once but labelled days later
    (a classifier or routing outage) is news nobody has had, and still goes out at once. After
    that (a relabel, a new link), it is its age now, so that reclassifying old posts after a model
    change does not send a flood of stale alerts.
    """
    return (mention.collected_at if first else now) - mention.created_at


def _audience(
    session: Session, config: AlertsConfig, entity: MentionEntity, labels: Sequence[str]
) -> list[tuple[Recipient, str]]:
    """Who hears about this entity at once, each with the most serious label routed to them."""
    chosen: dict[int, tuple[Recipient, str]] = {}
    for label in labels:
        audiences = config.immediate[label]
        recipients = recipients_for_entity(
            session,
            doctor_id=entity.doctor_id,
            practice_id=entity.practice_id,
            include_org="organisation" in audiences,
        )
        for recipient in recipients:
            if recipient.scope is not Scope.ORG and "entity" not in audiences:
                continue
            if recipient.immediate_alerts and label in recipient.categories:
                chosen.setdefault(recipient.id, (recipient, label))
    return list(chosen.values())


def _same_entity(entity: MentionEntity) -> ColumnElement[bool]:
    if entity.doctor_id is not None:
        return Alert.doctor_id == entity.doctor_id
    return Alert.practice_id == entity.practice_id


def _alert_for(
    session: Session,
    config: AlertsConfig,
    recipient: Recipient,
    entity: MentionEntity,
    label: str,
    now: datetime,
) -> Alert:
    """The alert this mention joins: an open one for the same entity, a follow-up, or a new one."""
    grouped = label in config.group_labels
    if grouped:
        latest = session.scalars(
            select(Alert)
            .where(
                Alert.recipient_id == recipient.id,
                Alert.label == label,
                _same_entity(entity),
                Alert.window_ends_at > now,
            )
            .order_by(Alert.id.desc())
            .limit(1)
        ).first()
        if latest is not None and latest.enqueued_at is None:
            return latest
        if latest is not None:
            return _new_alert(session, recipient, entity, label, now, latest.window_ends_at, follow_up=True)
    ends = now + config.group_window if grouped else now
    return _new_alert(session, recipient, entity, label, now, ends, follow_up=False)


def _new_alert(
    session: Session,
    recipient: Recipient,
    entity: MentionEntity,
    label: str,
    now: datetime,
    window_ends_at: datetime,
    follow_up: bool,
) -> Alert:
    alert = Alert(
        recipient_id=recipient.id,
        label=label,
        doctor_id=entity.doctor_id,
        practice_id=entity.practice_id,
        follow_up=follow_up,
        opened_at=now,
        window_ends_at=window_ends_at,
        due_at=window_ends_at if follow_up else now,
    )
    session.add(alert)
    return alert


def enqueue_due_alerts(session: Session, config: AlertsConfig, now: datetime) -> int:
    """Render and enqueue every alert that is due (new ones at once, follow-ups when their window closes)."""
    alerts = session.scalars(
        select(Alert)
        .where(Alert.enqueued_at.is_(None), Alert.due_at <= now)
        .order_by(Alert.id)
        .options(selectinload(Alert.items), selectinload(Alert.recipient))
    ).all()
    count = 0
    for alert in alerts:
        alert.enqueued_at = now
        email = alert_email(session, config, alert)
        if email is None:
            log.warning(
                "alert %d has no post to send (none its recipient may see, or all relabelled since)",
                alert.id,
            )
            continue
        key = f"alert:r{alert.recipient_id}:m{alert.items[0].mention_id}"
        count += enqueue_email(
            session, config.email, alert.recipient, email, key=key, kind="alert", priority=URGENT, now=now
        )
    return count
