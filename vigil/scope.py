"""Tenant isolation: which mentions a recipient may see, and who hears about an entity.

Every email, page and export that shows mentions filters them through ``visible_to`` so that a
practice never sees another practice's mentions. The defence organisation sees all its members.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, Subquery, exists, false, func, or_, select, true
from sqlalchemy.orm import Session

from vigil.models import Doctor, Mention, MentionEntity, Recipient, Scope


def entity_in_scope(recipient: Recipient) -> ColumnElement[bool]:
    """A condition on MentionEntity: the entity is one this recipient may see."""
    if recipient.scope is Scope.ORG:
        return true()
    if recipient.scope is Scope.PRACTICE and recipient.practice_id is not None:
        practice_doctors = select(Doctor.id).where(Doctor.practice_id == recipient.practice_id)
        return or_(
            MentionEntity.practice_id == recipient.practice_id,
            MentionEntity.doctor_id.in_(practice_doctors),
        )
    if recipient.scope is Scope.DOCTOR and recipient.doctor_id is not None:
        return MentionEntity.doctor_id == recipient.doctor_id
    return false()


def visible_to(recipient: Recipient) -> ColumnElement[bool]:
    """A condition on Mention: it names at least one entity this recipient may see."""
    return exists().where(MentionEntity.mention_id == Mention.id, entity_in_scope(recipient))


def reached_between(recipient: Recipient, start: datetime, end: datetime) -> Subquery:
    """The mentions that first reached this recipient in [start, end), and when (``mention_id``, ``at``).

    A mention reaches a recipient when it is linked to an entity in their scope: when it is
    collected, or later, when a post seen again names someone newly registered. Weekly digests
    count posts by this time, not by when they were posted, so that a post collected late (a slow
    feed, a backfill, an import) is in the next digest rather than in one already sent.
    """
    linked_at = MentionEntity.linked_at
    return (
        select(MentionEntity.mention_id, func.min(linked_at).label("at"))
        .where(linked_at < end, entity_in_scope(recipient))
        .group_by(MentionEntity.mention_id)
        .having(func.min(linked_at) >= start)
        .subquery()
    )


def recipients_for_entity(
    session: Session,
    *,
    doctor_id: int | None = None,
    practice_id: int | None = None,
    include_org: bool = False,
) -> list[Recipient]:
    """Who is responsible for an entity: the doctor, their practice, and optionally the organisation."""
    if doctor_id is not None:
        practice_id = session.scalar(select(Doctor.practice_id).where(Doctor.id == doctor_id))
    conditions: list[ColumnElement[bool]] = []
    if doctor_id is not None:
        conditions.append((Recipient.scope == Scope.DOCTOR) & (Recipient.doctor_id == doctor_id))
    if practice_id is not None:
        conditions.append((Recipient.scope == Scope.PRACTICE) & (Recipient.practice_id == practice_id))
    if include_org:
        conditions.append(Recipient.scope == Scope.ORG)
    if not conditions:
        return []
    return list(session.scalars(select(Recipient).where(or_(*conditions)).order_by(Recipient.id)))
