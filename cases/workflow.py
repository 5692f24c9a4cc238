"""The life of a case: opened by detection, fed with evidence, triaged by people, and closed.

Status moves only forward: new → triaged → escalated or closed, and escalated → closed. Every
change is a ``CaseEvent`` naming who made it; detection acts as ``vigil``. Closing a case frees
its entities' open slots, so the next emerging situation opens a fresh case; the evidence of the
closed one is not counted again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from vigil.errors import VigilError
from vigil.models import (
    Case,
    CaseEntity,
    CaseEvent,
    CaseMention,
    CaseReason,
    CaseStatus,
    Classification,
    Doctor,
    Mention,
    Practice,
    Severity,
    utcnow,
)

SYSTEM_ACTOR = "vigil"
TRANSITIONS: dict[CaseStatus, tuple[CaseStatus, ...]] = {
    CaseStatus.NEW: (CaseStatus.TRIAGED,),
    CaseStatus.TRIAGED: (CaseStatus.ESCALATED, CaseStatus.CLOSED),
    CaseStatus.ESCALATED: (CaseStatus.CLOSED,),
    CaseStatus.CLOSED: (),
}

EntityRef = tuple[str, int]
"""A registered entity: ``("doctor", id)`` or ``("practice", id)``."""


class CaseError(VigilError):
    """A case change that is not allowed (an invalid transition, an unknown case)."""


@dataclass
class Finding:
    """What a detection rule found: enough to open a case, or to feed an open one."""

    reason: CaseReason
    entities: list[EntityRef]
    evidence: list[int]
    severity: Severity
    title: str
    details: dict[str, Any] = field(default_factory=dict)


def open_slot(reason: CaseReason, entity: EntityRef) -> str:
    kind, key = entity
    return f"{reason}:{kind}:{key}"


def entity_ref(doctor_id: int | None, practice_id: int | None) -> EntityRef:
    if doctor_id is not None:
        return ("doctor", doctor_id)
    if practice_id is None:
        raise ValueError("an entity is a doctor or a practice")
    return ("practice", practice_id)


def _entity_row(entity: EntityRef, slot: str | None, case_id: int | None = None) -> CaseEntity:
    kind, key = entity
    if kind == "doctor":
        return CaseEntity(case_id=case_id, doctor_id=key, open_slot=slot)
    return CaseEntity(case_id=case_id, practice_id=key, open_slot=slot)


def open_cases_for(session: Session, reason: CaseReason, entities: Iterable[EntityRef]) -> list[Case]:
    """Open cases of this reason holding any of these entities, oldest first."""
    slots = [open_slot(reason, entity) for entity in entities]
    if not slots:
        return []
    query = select(Case).join(CaseEntity).where(CaseEntity.open_slot.in_(slots)).order_by(Case.id)
    return list(session.scalars(query).unique())


def record(session: Session, case: Case, action: str, actor: str, at: datetime, **values: str) -> None:
    session.add(CaseEvent(case=case, action=action, actor=actor, at=at, **values))
    case.updated_at = at


def open_or_feed(session: Session, finding: Finding, now: datetime) -> tuple[Case, bool]:
    """Open a case for the finding, or give its evidence to the open case that holds its slots.

    Returns the case and whether it is new. The unique open slots decide races: when another pass
    opened the case first, this insert fails inside a savepoint and the evidence goes to that case.
    """
    existing = open_cases_for(session, finding.reason, finding.entities)
    if existing:
        feed(session, existing[0], finding, now)
        return existing[0], False
    try:
        with session.begin_nested():
            case = Case(
                reason=finding.reason,
                severity=finding.severity,
                title=finding.title[:300],
                details=finding.details,
                opened_at=now,
                updated_at=now,
                last_evidence_at=now,
                entities=[_entity_row(e, open_slot(finding.reason, e)) for e in finding.entities],
            )
            session.add(case)
            session.flush()
    except IntegrityError:
        winner = open_cases_for(session, finding.reason, finding.entities)
        if not winner:
            raise
        feed(session, winner[0], finding, now)
        return winner[0], False
    record(session, case, "opened", SYSTEM_ACTOR, now, new_value=finding.severity.value, note=finding.title)
    link_mentions(session, case, finding.evidence, now)
    return case, True


def feed(session: Session, case: Case, finding: Finding, now: datetime) -> int:
    """Attach new evidence (and, for campaigns, new entities) to an open case; return mentions added."""
    known = {entity_ref(row.doctor_id, row.practice_id) for row in case.entities}
    for entity in finding.entities:
        if entity not in known:
            add_entity(session, case, entity, now)
    added = link_mentions(session, case, finding.evidence, now)
    if added:
        total = len(case_mention_ids(session, case.id))
        record(session, case, "evidence", SYSTEM_ACTOR, now, new_value=f"+{added} mention(s), {total} in all")
        case.last_evidence_at = now
    return added


def raise_severity(session: Session, case: Case, severity: Severity, now: datetime) -> bool:
    """Raise (never lower) a case's severity as its evidence grows; return whether it rose."""
    if severity.rank <= case.severity.rank:
        return False
    record(session, case, "severity", SYSTEM_ACTOR, now, old_value=case.severity, new_value=severity)
    case.severity = severity
    return True


def add_entity(session: Session, case: Case, entity: EntityRef, now: datetime) -> None:
    """Add an entity to an open case; it takes the open slot unless another open case holds it."""
    slot: str | None = open_slot(case.reason, entity)
    if session.scalar(select(CaseEntity.id).where(CaseEntity.open_slot == slot)) is not None:
        slot = None
    try:
        with session.begin_nested():
            session.add(_entity_row(entity, slot, case.id))
    except IntegrityError:  # a concurrent pass gave the slot to another case just now
        session.add(_entity_row(entity, None, case.id))
    session.flush()
    session.expire(case, ["entities"])
    record(session, case, "entity", SYSTEM_ACTOR, now, new_value=f"{entity[0]} {entity[1]}")


def link_mentions(session: Session, case: Case, mention_ids: Sequence[int], now: datetime) -> int:
    """Link mentions as evidence, ignoring ones already linked (also by a concurrent pass)."""
    new = sorted(set(mention_ids) - case_mention_ids(session, case.id))
    if not new:
        return 0
    rows = [{"case_id": case.id, "mention_id": mention_id, "added_at": now} for mention_id in new]
    session.execute(_insert_ignoring_duplicates(session, rows))
    session.expire(case, ["mentions"])
    return len(new)


def _insert_ignoring_duplicates(session: Session, rows: list[dict[str, Any]]) -> Any:
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(CaseMention).values(rows).on_conflict_do_nothing()


def case_mention_ids(session: Session, case_id: int) -> set[int]:
    return set(session.scalars(select(CaseMention.mention_id).where(CaseMention.case_id == case_id)))


def get_case(session: Session, case_id: int, for_update: bool = False) -> Case:
    """The case, locked against a colleague's simultaneous change when ``for_update``."""
    case = session.get(Case, case_id, with_for_update=for_update or None)
    if case is None:
        raise CaseError(f"there is no case {case_id}")
    return case


def update_case(
    session: Session,
    case: Case,
    *,
    by: str,
    status: CaseStatus | None = None,
    assignee: str | None = None,
    note: str | None = None,
    now: datetime | None = None,
) -> list[str]:
    """Apply a person's changes, all or none; return what changed, in words."""
    now = now or utcnow()
    if not by.strip():
        raise CaseError("say who is making the change (--by NAME)")
    if status is not None and status != case.status and status not in TRANSITIONS[case.status]:
        allowed = ", ".join(TRANSITIONS[case.status]) or "nothing (it is closed)"
        raise CaseError(f"case {case.id} is {case.status}: it can move to {allowed}, not to {status}")
    changes: list[str] = []
    if assignee is not None and assignee != case.assignee:
        record(session, case, "assignee", by, now, old_value=case.assignee, new_value=assignee)
        changes.append(f"assignee {case.assignee or '-'} → {assignee or '-'}")
        case.assignee = assignee
    if note:
        record(session, case, "note", by, now, note=note)
        changes.append("note added")
    if status is not None and status != case.status:
        record(session, case, "status", by, now, old_value=case.status, new_value=status)
        changes.append(f"status {case.status} → {status}")
        case.status = status
        if status is CaseStatus.CLOSED:
            close(case, now)
    return changes


def close(case: Case, now: datetime) -> None:
    """Free the entities' open slots, so that new evidence opens a new case."""
    case.closed_at = now
    for row in case.entities:
        row.open_slot = None


def entity_names(session: Session, entities: Iterable[EntityRef]) -> dict[EntityRef, str]:
    """How people know each entity: ``Dr Amira Hassan (GMC 1000001, Alice Road Surgery)`` (the
    practice, so that the case team knows whom to call) or ``Alice Road Surgery (A10001)``."""
    entities = set(entities)
    doctor_ids = [key for kind, key in entities if kind == "doctor"]
    practice_ids = [key for kind, key in entities if kind == "practice"]
    names: dict[EntityRef, str] = {}
    doctors = select(Doctor).where(Doctor.id.in_(doctor_ids)).options(selectinload(Doctor.practice))
    for doctor in session.scalars(doctors):
        at = f", {doctor.practice.name}" if doctor.practice is not None else ""
        names["doctor", doctor.id] = f"Dr {doctor.full_name} (GMC {doctor.gmc_number}{at})"
    for practice in session.scalars(select(Practice).where(Practice.id.in_(practice_ids))):
        names["practice", practice.id] = f"{practice.name} ({practice.ods_code})"
    return names


def evidence_summary(session: Session, case_id: int) -> dict[str, int]:
    """Mentions, distinct authors and threats among a case's evidence."""
    rows = session.execute(
        select(Mention.id, Mention.source, Mention.author, Mention.author_id, Classification.threat)
        .join(CaseMention, CaseMention.mention_id == Mention.id)
        .outerjoin(Classification, Classification.mention_id == Mention.id)
        .where(CaseMention.case_id == case_id)
    ).all()
    authors = {author_key(r.id, r.source, r.author, r.author_id) for r in rows}
    return {"mentions": len(rows), "authors": len(authors), "threats": sum(1 for r in rows if r.threat)}


def author_key(mention_id: int, source: str, author: str, author_id: str | None) -> str:
    """Who posted, as one key per account; a post with no author is its own author."""
    who = (author_id or author or "").strip().lower()
    return f"{source}:{who}" if who else f"mention:{mention_id}"
