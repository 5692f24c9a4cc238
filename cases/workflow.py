"""The life of a case: opened by detection, fed with evidence, triaged by people, and closed.

Status moves only forward: new → triaged → escalated or closed, and escalated → closed. Every
change is a ``CaseEvent`` naming who made it; detection acts as ``vigil``, and no person may.
Closing a case frees its entities' open slots, so the next emerging situation opens a fresh case;
the evidence of the closed one is not counted again, and a pass that meets the case just closed
feeds it nothing (``still_open``).
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
    storable_ids,
    utcnow,
)

SYSTEM_ACTOR = "vigil"
NAME_LENGTH = 200  # of Case.assignee and CaseEvent.actor: PostgreSQL refuses more
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


def still_open(session: Session, case: Case) -> bool:
    """Lock the case (``SELECT ... FOR UPDATE``) and say whether it is still open.

    A handler's ``vigil cases update`` locks the case the same way, so a detection pass that calls
    this before feeding a case either waits for the handler's close and sees it, or holds the
    handler off until it commits. Without it, on PostgreSQL, a pass could feed a case closed after
    it looked it up, and give the closed case an entity's open slot for good. (SQLite needs no
    lock: each transaction takes the write lock when it begins.)
    """
    session.flush()  # the refresh below would drop this pass's unflushed changes to the case
    session.refresh(case, with_for_update=True)
    return case.is_open


def record(session: Session, case: Case, action: str, actor: str, at: datetime, **values: str) -> None:
    session.add(CaseEvent(case=case, action=action, actor=actor, at=at, **values))
    case.updated_at = at


def open_or_feed(session: Session, finding: Finding, now: datetime) -> tuple[Case, bool]:
    """Open a case for the finding, or give its evidence to the open case that holds its slots.

    Returns the case and whether it is new. The unique open slots decide races: when another pass
    opened the case first, this insert fails inside a savepoint and the evidence goes to that case.
    A campaign is always opened here: it joins an open campaign only by sharing posts with it,
    which the caller checks first (see ``free_slots``).
    """
    slots = free_slots(session, finding)
    campaign = finding.reason is CaseReason.CAMPAIGN
    existing = [] if campaign else open_cases_for(session, finding.reason, finding.entities)
    existing = [case for case in existing if still_open(session, case)]
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
                entities=[_entity_row(entity, slot) for entity, slot in slots.items()],
            )
            session.add(case)
            session.flush()
    except IntegrityError:
        winner = open_cases_for(session, finding.reason, [e for e, slot in slots.items() if slot])
        if not winner:
            raise
        feed(session, winner[0], finding, now)
        return winner[0], False
    record(session, case, "opened", SYSTEM_ACTOR, now, new_value=finding.severity.value, note=finding.title)
    link_mentions(session, case, finding.evidence, now)
    return case, True


def free_slots(session: Session, finding: Finding) -> dict[EntityRef, str | None]:
    """The open slot each of the finding's entities takes in a new case.

    A new campaign that merely names a member of another open campaign (an unrelated account
    abusing one of its doctors) is a campaign of its own, with its own email: that member keeps
    its slot in the older case and holds none in the new one.
    """
    slots: dict[EntityRef, str | None] = {e: open_slot(finding.reason, e) for e in finding.entities}
    if finding.reason is not CaseReason.CAMPAIGN:
        return slots
    taken = set(session.scalars(select(CaseEntity.open_slot).where(CaseEntity.open_slot.in_(slots.values()))))
    return {entity: None if slot in taken else slot for entity, slot in slots.items()}


def feed(session: Session, case: Case, finding: Finding, now: datetime) -> list[int]:
    """Attach new evidence (and, for campaigns, new entities) to an open case; return the mentions
    added. A case a handler has closed meanwhile takes nothing (see ``still_open``)."""
    if not still_open(session, case):
        return []
    known = {entity_ref(row.doctor_id, row.practice_id) for row in case.entities}
    for entity in finding.entities:
        if entity not in known:
            add_entity(session, case, entity, now)
    added = link_mentions(session, case, finding.evidence, now)
    if added:
        total = len(case_mention_ids(session, case.id))
        change = f"+{len(added)} mention(s), {total} in all"
        record(session, case, "evidence", SYSTEM_ACTOR, now, new_value=change)
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


def link_mentions(session: Session, case: Case, mention_ids: Sequence[int], now: datetime) -> list[int]:
    """Link mentions as evidence, ignoring ones already linked (also by a concurrent pass); return
    the ones this call linked."""
    new = sorted(set(mention_ids) - case_mention_ids(session, case.id))
    if not new:
        return []
    rows = [{"case_id": case.id, "mention_id": mention_id, "added_at": now} for mention_id in new]
    session.execute(_insert_ignoring_duplicates(session, rows))
    session.expire(case, ["mentions"])
    return new


def _insert_ignoring_duplicates(session: Session, rows: list[dict[str, Any]]) -> Any:
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(CaseMention).values(rows).on_conflict_do_nothing()


def case_mention_ids(session: Session, case_id: int) -> set[int]:
    return set(session.scalars(select(CaseMention.mention_id).where(CaseMention.case_id == case_id)))


def get_case(session: Session, case_id: int, for_update: bool = False) -> Case:
    """The case, locked against a colleague's simultaneous change when ``for_update``."""
    case = session.get(Case, case_id, with_for_update=for_update or None) if storable_ids([case_id]) else None
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
    refuse_wrong_change(case, by, status, assignee)
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


def refuse_wrong_change(case: Case, by: str, status: CaseStatus | None, assignee: str | None) -> None:
    """Raise ``CaseError`` for a change that must not be made, before anything is recorded.

    ``vigil`` is detection's own name: a person writing as it would make the history lie about
    who did what. A closed case takes notes, but no new assignee: it is no one's work any more,
    and ``vigil cases list`` (open cases) would never show it in the new assignee's queue.
    """
    if not by.strip():
        raise CaseError("say who is making the change (--by NAME)")
    for option, value in (("--by", by), ("--assignee", assignee or "")):
        if len(value) > NAME_LENGTH:
            raise CaseError(f"{option} is {len(value)} characters long; give at most {NAME_LENGTH}")
    if by.strip().lower() == SYSTEM_ACTOR:
        raise CaseError(f"{SYSTEM_ACTOR!r} is detection's own name in the history: give yours (--by NAME)")
    if status is not None and status != case.status and status not in TRANSITIONS[case.status]:
        allowed = ", ".join(TRANSITIONS[case.status]) or "nothing (it is closed)"
        raise CaseError(f"case {case.id} is {case.status}: it can move to {allowed}, not to {status}")
    if assignee is not None and assignee != case.assignee and case.status is CaseStatus.CLOSED:
        raise CaseError(f"case {case.id} is closed: it can take a note, not a new assignee")


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


# Authors that name no account, so that many people share them. Reddit gives a deleted (or
# suspended) account as "[deleted]", with no account id; Care Opinion's API gives no account at
# all, only the author's role ("patient", "relative", "carer"), so every one of its stories has
# an author that thousands of others share.
NO_ACCOUNT_AUTHORS = frozenset({"[deleted]", "u/[deleted]"})
NO_ACCOUNT_SOURCES = frozenset({"careopinion"})


def author_key(mention_id: int, source: str, author: str, author_id: str | None) -> str:
    """Who posted, as one key per account: one person posting ten times counts once.

    A post whose author names no account (none given, a deleted account, a role) is its own
    author: counting every "u/[deleted]" as one account would hide a pile-on by people who have
    deleted their accounts since, and make their posts about several members one account's
    campaign. An account id, when the source gives one, always decides.
    """
    who = (author_id or author or "").strip().lower()
    no_account = author_id is None and (who in NO_ACCOUNT_AUTHORS or source in NO_ACCOUNT_SOURCES)
    return f"mention:{mention_id}" if not who or no_account else f"{source}:{who}"
