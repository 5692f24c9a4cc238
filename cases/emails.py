"""The defence organisation's case emails: "emerging case" at once, and the weekly organisation digest.

Both go through the alerts outbox (``alerts.outbox.enqueue_email``) under idempotency keys, so they have
the alerts' delivery guarantees: enqueued in the transaction that opened the case (no case without
its email, no email without its case), and stored once however often a pass or job runs. They
are sent only to organisation-scoped recipients: a case spans members, and a practice may not
see other practices' mentions. Templates extend the alerts' base templates and their autoescaping;
every scraped text goes through ``alerts.views`` (scoped, cleaned) before it reaches them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import css_inline
from jinja2 import ChoiceLoader, FileSystemLoader
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from alerts import render
from alerts.config import AlertsConfig
from alerts.digest import scope_data
from alerts.emails import base_context, recipient_reason
from alerts.outbox import URGENT, InlineImage, content_id, enqueue_email, existing_keys
from alerts.render import RenderedEmail, local_time, oneline
from alerts.views import labelled_by, mention_views
from alerts.weeks import Week
from cases.detect import flagged_condition
from cases.views import REASON_TITLES, explain
from cases.workflow import EntityRef, entity_names, entity_ref, open_cases_for
from vigil.models import Case, CaseMention, Classification, Mention, MentionEntity, Recipient, Scope
from vigil.models.cases import OPEN_STATUSES
from vigil.scope import reached_between

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent / "templates"
# The alerts' environment (autoescape, filters, base templates), finding the case templates first.
ENVIRONMENT = render.ENVIRONMENT.overlay(
    loader=ChoiceLoader([FileSystemLoader(TEMPLATES), render.ENVIRONMENT.loader])  # type: ignore[list-item]
)
_INLINER = css_inline.CSSInliner(keep_style_tags=True, load_remote_stylesheets=False)
EVIDENCE_SHOWN = 8
FLAGGED_SERIES = ("threat", "abusive", "critical")


def render_email(name: str, context: dict[str, Any]) -> RenderedEmail:
    """``{name}-subject.txt``, ``{name}-body.txt`` and ``{name}-body.html`` from ``cases/templates``."""
    subject = ENVIRONMENT.get_template(f"{name}-subject.txt").render(context)
    text = ENVIRONMENT.get_template(f"{name}-body.txt").render(context)
    html = ENVIRONMENT.get_template(f"{name}-body.html").render(context)
    return RenderedEmail(subject=oneline(subject, 250), text=text, html=_INLINER.inline(html))


def organisation_recipients(session: Session, *, digest: bool = False) -> list[Recipient]:
    """The defence organisation's recipients who want immediate emails (or the digest)."""
    wanted = Recipient.digest if digest else Recipient.immediate_alerts
    return list(
        session.scalars(
            select(Recipient).where(Recipient.scope == Scope.ORG, wanted.is_(True)).order_by(Recipient.id)
        )
    )


# -- the emerging-case email -------------------------------------------------------------------


@dataclass
class CaseNotifier:
    """Detection's ``notify``: queue the emerging-case email, or an update (a severity rise, a new
    threat), for org recipients."""

    config: AlertsConfig
    queued: int = 0

    def __call__(self, session: Session, case: Case, what: str) -> None:
        self.queued += queue_case_email(session, self.config, case, what)


def case_email_key(case: Case, what: str, recipient: Recipient) -> str:
    """One email per case event: its opening, each severity it rises to, each new threat post."""
    event = what if what == "opened" or is_new_threat(what) else f"severity-{case.severity}"
    return f"case:{case.id}:{event}:r{recipient.id}"


def is_new_threat(what: str) -> bool:
    """Whether detection's ``what`` is ``"threat-{mention id}"``: a threat joined the open case."""
    return what.startswith("threat-")


def queue_case_email(session: Session, config: AlertsConfig, case: Case, what: str) -> int:
    """Enqueue one email per organisation recipient, in the caller's transaction; return how many."""
    recipients = organisation_recipients(session)
    done = existing_keys(session, [case_email_key(case, what, r) for r in recipients])
    queued = 0
    for recipient in recipients:
        key = case_email_key(case, what, recipient)
        if key in done:
            continue
        email = case_email(session, config, case, what, recipient)
        queued += enqueue_email(
            session,
            config.email,
            recipient,
            email,
            key=key,
            kind="case",
            priority=URGENT,
            now=case.updated_at,
        )
    return queued


def case_email(
    session: Session, config: AlertsConfig, case: Case, what: str, recipient: Recipient
) -> RenderedEmail:
    timezone = config.digest.timezone
    evidence = list(
        session.scalars(
            select(CaseMention.mention_id)
            .join(Mention, Mention.id == CaseMention.mention_id)
            .where(CaseMention.case_id == case.id)
            .order_by(Mention.created_at.desc(), Mention.id.desc())
        )
    )
    if is_new_threat(what):  # the threat that joined comes first, however long ago it was posted
        threat = int(what.removeprefix("threat-"))
        evidence = [threat, *(mention_id for mention_id in evidence if mention_id != threat)]
    entities = [entity_ref(row.doctor_id, row.practice_id) for row in case.entities]
    names = entity_names(session, entities)
    mentions = mention_views(session, recipient, evidence[:EVIDENCE_SHOWN], timezone)
    return render_email(
        "case",
        {
            **base_context(config, recipient_reason(recipient)),
            "what": what,
            "new_threat": is_new_threat(what),
            "case": case,
            "reason_title": REASON_TITLES[case.reason],
            "title": case.title,
            "opened": local_time(case.opened_at, timezone),
            "figures": explain(case),
            "members": [names.get(entity, "") for entity in entities],
            "evidence_count": len(evidence),
            "mentions": mentions,
            "labelled_by": labelled_by(mentions),
            "related": related_cases(session, case, entities),
        },
    )


def related_cases(session: Session, case: Case, entities: Sequence[EntityRef]) -> list[Case]:
    """Other open cases about the same members (another reason, or another campaign)."""
    found: dict[int, Case] = {}
    for reason in REASON_TITLES:
        for other in open_cases_for(session, reason, entities):  # type: ignore[arg-type]
            if other.id != case.id:
                found[other.id] = other
    return sorted(found.values(), key=lambda c: c.id)


# -- the weekly organisation digest ------------------------------------------------------------


def digest_key(recipient: Recipient, week: Week) -> str:
    return f"cases-digest:r{recipient.id}:{week}"


def queue_digests(session: Session, config: AlertsConfig, week: Week, now: datetime) -> int:
    """Enqueue the week's organisation digest for every org recipient who has not had it yet."""
    recipients = organisation_recipients(session, digest=True)
    done = existing_keys(session, [digest_key(r, week) for r in recipients])
    todo = [r for r in recipients if digest_key(r, week) not in done]
    if not todo:
        return 0
    data = digest_data(session, config, week, todo[0])
    if data["quiet"] and not config.digest.send_quiet_weeks:
        return 0
    queued = 0
    for recipient in todo:
        email, images = digest_email(config, data, recipient)
        key = digest_key(recipient, week)
        queued += enqueue_email(
            session, config.email, recipient, email, key=key, kind="cases-digest", images=images, now=now
        )
    log.info("organisation digest for %s: %d queued", week, queued)
    return queued


def digest_data(session: Session, config: AlertsConfig, week: Week, recipient: Recipient) -> dict[str, Any]:
    """What every organisation recipient sees the same: cases, the busiest members, the trend."""
    timezone = config.digest.timezone
    start, end = week.start(timezone), week.end(timezone)
    new = list(
        session.scalars(select(Case).where(Case.opened_at >= start, Case.opened_at < end).order_by(Case.id))
    )
    still_open = list(
        session.scalars(
            select(Case).where(Case.opened_at < start, Case.status.in_(OPEN_STATUSES)).order_by(Case.id)
        )
    )
    trend = scope_data(session, config, recipient, week)
    members = top_members(session, config, week)
    flagged = flagged_mentions(session, recipient, start, end)
    return {
        "week": week,
        "new": [case_row(session, config, c) for c in new],
        "open": [case_row(session, config, c) for c in still_open],
        "members": members,
        "trend": trend,
        "flagged": flagged,
        "last_flagged": flagged_mentions(session, recipient, week.previous().start(timezone), start),
        "quiet": not (new or still_open or flagged),
    }


def flagged_mentions(session: Session, recipient: Recipient, start: datetime, end: datetime) -> int:
    """Flagged posts that reached the recipient in [start, end), each once: the trend counts a post
    once per label."""
    reached = reached_between(recipient, start, end)
    count = session.scalar(
        select(func.count())
        .select_from(reached)
        .join(Classification, Classification.mention_id == reached.c.mention_id)
        .where(flagged_condition())
    )
    return int(count or 0)


def case_row(session: Session, config: AlertsConfig, case: Case) -> dict[str, Any]:
    names = entity_names(session, [entity_ref(row.doctor_id, row.practice_id) for row in case.entities])
    return {
        "id": case.id,
        "severity": str(case.severity),
        "status": str(case.status),
        "assignee": case.assignee,
        "title": case.title,
        "members": list(names.values()),
        "evidence": len(case.mentions),
        "opened": local_time(case.opened_at, config.digest.timezone),
    }


def top_members(session: Session, config: AlertsConfig, week: Week) -> list[dict[str, Any]]:
    """The doctors and practices with the most flagged mentions this week, with last week's count."""
    timezone = config.digest.timezone
    this_start, this_end = week.start(timezone), week.end(timezone)
    counts = weekly_entity_counts(session, this_start, this_end)
    last = weekly_entity_counts(session, week.previous().start(timezone), this_start)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[: config.digest.top_items]
    names = entity_names(session, [entity for entity, _ in ranked])
    return [
        {"name": names.get(entity, ""), "this_week": count, "last_week": last.get(entity, 0)}
        for entity, count in ranked
    ]


def weekly_entity_counts(session: Session, start: datetime, end: datetime) -> dict[EntityRef, int]:
    """Flagged mentions per doctor and practice, by when each reached them (as the digests count)."""
    rows = session.execute(
        select(MentionEntity.doctor_id, MentionEntity.practice_id, func.count(Mention.id))
        .join(Mention, Mention.id == MentionEntity.mention_id)
        .join(Classification, Classification.mention_id == Mention.id)
        .where(flagged_condition(), MentionEntity.linked_at >= start, MentionEntity.linked_at < end)
        .group_by(MentionEntity.doctor_id, MentionEntity.practice_id)
    ).all()
    return {entity_ref(doctor_id, practice_id): count for doctor_id, practice_id, count in rows}


def digest_email(
    config: AlertsConfig, data: dict[str, Any], recipient: Recipient
) -> tuple[RenderedEmail, list[InlineImage]]:
    chart = trend_chart(config, data)
    week: Week = data["week"]
    context = {
        **base_context(config, recipient_reason(recipient)),
        **data,
        "week_title": week.title(),
        "chart": chart,
    }
    images = [InlineImage(cid=chart["cid"], data=chart["png"], filename="trend.png")] if chart else []
    return render_email("cases-digest", context), images


def trend_chart(config: AlertsConfig, data: dict[str, Any]) -> dict[str, Any] | None:
    """Flagged mentions per week across all members, by label (the alerts' chart)."""
    from alerts.chart import NAMES
    from alerts.chart import trend_chart as draw  # matplotlib loads in a second: only when charting

    trend = data["trend"]
    series = tuple((label, tuple(trend.counts[label])) for label in FLAGGED_SERIES)
    if not any(sum(counts) for _, counts in series):
        return None
    labels = tuple(f"{w.monday.day} {w.monday:%b}" for w in trend.weeks)
    first, last = trend.weeks[0], trend.weeks[-1]
    totals = ", ".join(str(sum(counts[i] for _, counts in series)) for i in range(len(trend.weeks)))
    alt = (
        f"Bar chart of flagged mentions of all members per week"
        f" ({', '.join(NAMES[s] for s in FLAGGED_SERIES)}),"
        f" for the {len(trend.weeks)} weeks from {first.monday.day} {first.monday:%B %Y}"
        f" to {last.sunday.day} {last.sunday:%B %Y}. Labels a week (a post with two counts twice): {totals}."
    )
    return {"cid": content_id(config.email, "cases-trend"), "png": draw(labels, series), "alt": alt}
