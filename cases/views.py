"""Cases as people read them (the CLI, its JSON, the emails): names, figures in words, evidence, history."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case as sql_case
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from cases.detect import pending_count
from cases.workflow import entity_names, entity_ref
from vigil.clock import sortable_time
from vigil.labels import REVIEWED, sureness
from vigil.models import Case, CaseMention, Classification, Mention, MentionEntity
from vigil.models.cases import OPEN_STATUSES, CaseStatus, Severity

REASON_TITLES = {
    "spike": "Spike",
    "pile_on": "Pile-on",
    "threat": "Threat",
    "campaign": "Coordinated campaign",
}


def explain(case: Case) -> list[str]:
    """The figures that opened a case, in words."""
    d = case.details
    if case.reason in ("spike", "pile_on"):
        return [
            f"{d['authors']} accounts posted flagged mentions within {d['hours']:g} hours.",
            f"Usually {d['expected']:.2g} such accounts in {d['hours']:g} hours; this many would come"
            f" by chance {odds(d['tail_probability'])}.",
        ]
    if case.reason == "threat":
        return [f"{d['threats']} {'post' if d['threats'] == 1 else 'posts'} that may be threatening."]
    if d.get("kind") == "author":
        return [f"{d['posts']} flagged posts by one account about {d['entities']} members."]
    return [
        f"{d['posts']} near-identical flagged posts by {d['authors']} accounts about {d['entities']} members."
    ]


def odds(probability: float) -> str:
    """A tail probability as a case handler reads it ("about 1 time in 2,000")."""
    if probability < 1e-6:
        return "less than 1 time in a million"
    if probability > 0.5:
        return "more often than not"
    return f"about 1 time in {int(float(f'{1 / probability:.2g}')):,}"


# Triage order: the most urgent first, then the newest.
SEVERITY_FIRST = sql_case(*[(Case.severity == s, -s.rank) for s in Severity], else_=0)


def load_cases(
    session: Session, statuses: Sequence[CaseStatus] = OPEN_STATUSES, reason: str | None = None
) -> list[Case]:
    query = (
        select(Case)
        .where(Case.status.in_(list(statuses)))
        .options(selectinload(Case.entities), selectinload(Case.mentions))
        .order_by(SEVERITY_FIRST, Case.opened_at.desc(), Case.id.desc())
    )
    if reason is not None:
        query = query.where(Case.reason == reason)
    return list(session.scalars(query))


def top_threat_scores(session: Session, cases: Sequence[Case]) -> dict[int, float]:
    """Each case's highest threat score among its evidence labelled threat: the case team's first
    clue to how sure a "possible threat" is (every threat opens a critical case). A threat a person
    labelled (``classifier.review``) is sure: the model's score for it is what they corrected."""
    rows = session.execute(
        select(CaseMention.case_id, Classification.scores, Classification.model_id)
        .join(Classification, Classification.mention_id == CaseMention.mention_id)
        .where(CaseMention.case_id.in_([case.id for case in cases]), Classification.threat.is_(True))
    )
    top: dict[int, float] = {}
    for case_id, scores, model_id in rows:
        top[case_id] = max(top.get(case_id, 0.0), sureness(model_id, scores, "threat"))
    return top


def case_summary(
    case: Case, names: dict[tuple[str, int], str], top_threat: float | None = None
) -> dict[str, Any]:
    entities = [entity_ref(row.doctor_id, row.practice_id) for row in case.entities]
    return {
        "id": case.id,
        "reason": str(case.reason),
        "severity": str(case.severity),
        "status": str(case.status),
        "title": case.title,
        "assignee": case.assignee,
        "opened_at": case.opened_at.isoformat(),
        "updated_at": case.updated_at.isoformat(),
        "last_evidence_at": case.last_evidence_at.isoformat(),
        "closed_at": case.closed_at.isoformat() if case.closed_at else None,
        "entities": [{"kind": kind, "id": key, "name": names.get((kind, key), "")} for kind, key in entities],
        "mentions": len(case.mentions),
        "top_threat_score": top_threat,
        "figures": explain(case),
        "details": case.details,
    }


def case_summaries(session: Session, cases: Sequence[Case]) -> list[dict[str, Any]]:
    names = entity_names(
        session, [entity_ref(row.doctor_id, row.practice_id) for case in cases for row in case.entities]
    )
    top = top_threat_scores(session, cases)
    return [case_summary(case, names, top.get(case.id)) for case in cases]


def case_detail(session: Session, case: Case) -> dict[str, Any]:
    """Everything about a case: its summary, every linked mention with its labels and the members
    it names, and its history."""
    mentions = session.scalars(
        select(Mention)
        .join(CaseMention, CaseMention.mention_id == Mention.id)
        .where(CaseMention.case_id == case.id)
        .options(selectinload(Mention.classification))
        .order_by(Mention.created_at, Mention.id)
    )
    named = members_named(session, case.id)
    return {
        **case_summaries(session, [case])[0],
        "evidence": [
            {
                "id": m.id,
                "source": m.source,
                "url": m.url,
                "author": m.author,
                "created_at": m.created_at.isoformat(),
                "members": named.get(m.id, []),
                "labels": m.classification.labels if m.classification else [],
                "scores": m.classification.scores if m.classification else {},
                "reviewed_by": reviewer(m.classification),
                "text": m.text,
            }
            for m in mentions
        ],
        "history": [
            {
                "at": event.at.isoformat(),
                "actor": event.actor,
                "action": event.action,
                "from": event.old_value,
                "to": event.new_value,
                "note": event.note,
            }
            for event in case.events
        ],
    }


def members_named(session: Session, case_id: int) -> dict[int, list[str]]:
    """The members each post of a case's evidence names, as people know them: a campaign's posts
    name different members, often by a handle or a nickname that the text alone does not give away."""
    links = session.execute(
        select(MentionEntity.mention_id, MentionEntity.doctor_id, MentionEntity.practice_id)
        .join(CaseMention, CaseMention.mention_id == MentionEntity.mention_id)
        .where(CaseMention.case_id == case_id)
        .order_by(MentionEntity.mention_id, MentionEntity.id)
    ).all()
    names = entity_names(session, [entity_ref(d, p) for _, d, p in links])
    named: dict[int, list[str]] = {}
    for mention_id, doctor_id, practice_id in links:
        named.setdefault(mention_id, []).append(names.get(entity_ref(doctor_id, practice_id), ""))
    return named


def status_section(runtime: Any, session: Session) -> tuple[str, list[tuple[str, str]]]:
    """``vigil status``: open cases by status and by reason, and what detection has still to scan."""
    counts = session.execute(
        select(Case.status, Case.reason, func.count())
        .where(Case.status.in_(list(OPEN_STATUSES)))
        .group_by(Case.status, Case.reason)
    ).all()
    by_status = {status: 0 for status in OPEN_STATUSES}
    by_reason = {reason: 0 for reason in REASON_TITLES}
    for status, reason, count in counts:
        by_status[status] += count
        by_reason[reason] += count
    rows = [("Open cases", str(sum(by_status.values())))]
    rows += [(f"  {status.value}", str(count)) for status, count in by_status.items()]
    rows += [(f"  {REASON_TITLES[reason].lower()}", str(count)) for reason, count in by_reason.items()]
    pending = pending_count(session)
    last = session.scalar(select(func.max(Mention.detected_at)))
    rows.append(("Awaiting detection", str(pending)))
    zone = ZoneInfo(runtime.settings.digest.timezone)  # the organisation's clock, as in its emails
    rows.append(("Last detection", sortable_time(last, zone) if last else "never"))
    return "Cases", rows


def reviewer(classification: Classification | None) -> str | None:
    """Who set these labels, if a person did (``classifier.review``)."""
    if classification is None or classification.model_id != REVIEWED:
        return None
    return classification.model_version
