"""Weekly digests: one per recipient and week, scoped to what that recipient may see.

A digest counts the week's mentions per category against the week before, charts the last few
weeks, lists the top posts of each category and ends with the guidance for the categories
present. It is stored in the outbox under ``digest:r{recipient}:{week}``: building the digests
for a week twice, or on two workers at once, stores each one once.

Recipients with the same scope (two contacts of one practice, every organisation recipient) see
the same mentions, so the data is gathered once per scope and the chart once per series.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, case, false, func, not_, or_, select
from sqlalchemy.orm import Session, selectinload

from alerts.config import AlertsConfig
from alerts.digest_file import DigestFile, digest_file, shown_to
from alerts.emails import base_context, guidance_for, recipient_reason
from alerts.outbox import Attachment, InlineImage, content_id, enqueue_email, existing_keys
from alerts.render import RenderedEmail, render_email
from alerts.views import LABEL_TITLES, MentionView, mention_views, scope_description
from alerts.weeks import Week
from vigil.db import transaction
from vigil.labels import LABELS, NEUTRAL, sureness
from vigil.models import Classification, Mention, Recipient, Scope, utcnow
from vigil.scope import reached_between

log = logging.getLogger(__name__)

CATEGORIES = (*LABELS, NEUTRAL)
UNLABELLED = "unlabelled"  # a section, not a category: posts the classifier had not reached
CHUNK = 50  # recipients per transaction: a crash loses at most this much work, never a digest
_CANDIDATES = 200  # recent posts per category among which the top-scoring are chosen


@dataclass(frozen=True)
class ScopeData:
    """What one scope saw: counts per category for each week of the trend, and this week's top posts."""

    weeks: list[Week]
    counts: dict[str, list[int]]
    totals: list[int]
    urgent: int  # this week's posts labelled threat or abusive
    unlabelled: int  # this week's posts the classifier had not labelled yet (in no category)
    top: dict[str, list[int]]
    file: DigestFile | None = None  # every post of the week (up to digest.file_rows)
    posted_before: int = 0  # this week's posts that were posted before the week began
    earliest: datetime | None = None  # when the earliest of those was posted

    @property
    def quiet(self) -> bool:
        return self.totals[-1] == 0


@dataclass
class DigestReport:
    week: Week
    recipients: int = 0
    built: int = 0
    existing: int = 0
    quiet_skipped: int = 0
    planned: list[tuple[str, int, bool]] = field(default_factory=list)  # dry run: (email, total, quiet)

    def __str__(self) -> str:
        return (
            f"week {self.week}: {self.built} digests built, {self.existing} already built,"
            f" {self.quiet_skipped} quiet weeks skipped, of {self.recipients} recipients"
        )


def digest_key(recipient: Recipient, week: Week) -> str:
    return f"digest:r{recipient.id}:{week}"


def build_digests(
    engine: Engine,
    config: AlertsConfig,
    week: Week,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> DigestReport:
    """Build and enqueue the week's digest for every recipient who wants one (or plan it, if dry_run)."""
    now = now or utcnow()
    report = DigestReport(week)
    with transaction(engine) as session:
        ids = list(
            session.scalars(select(Recipient.id).where(Recipient.digest.is_(True)).order_by(Recipient.id))
        )
    report.recipients = len(ids)
    cache: dict[tuple[Any, ...], ScopeData] = {}
    for start in range(0, len(ids), CHUNK):
        with transaction(engine) as session:
            _build_chunk(session, config, week, ids[start : start + CHUNK], cache, report, dry_run, now)
        if progress:
            progress(len(ids[start : start + CHUNK]))
    log.info("digests: %s", report)
    return report


def _build_chunk(
    session: Session,
    config: AlertsConfig,
    week: Week,
    ids: list[int],
    cache: dict[tuple[Any, ...], ScopeData],
    report: DigestReport,
    dry_run: bool,
    now: datetime,
) -> None:
    recipients = session.scalars(
        select(Recipient)
        .where(Recipient.id.in_(ids))
        .order_by(Recipient.id)
        .options(selectinload(Recipient.practice), selectinload(Recipient.doctor))
    ).all()
    done = existing_keys(session, [digest_key(recipient, week) for recipient in recipients])
    for recipient in recipients:
        if digest_key(recipient, week) in done:
            report.existing += 1
            continue
        data = scope_data(session, config, recipient, week, cache, with_file=not dry_run)
        if data.quiet and not config.digest.send_quiet_weeks:
            report.quiet_skipped += 1
            continue
        if dry_run:
            report.planned.append((recipient.email, data.totals[-1], data.quiet))
            continue
        email, images = digest_email(session, config, recipient, data)
        key = digest_key(recipient, week)
        attachments = [data.file.attachment] if data.file else []
        report.built += enqueue_email(
            session,
            config.email,
            recipient,
            email,
            key=key,
            kind="digest",
            images=images,
            attachments=attachments,
            now=now,
        )


def _scope_key(recipient: Recipient) -> tuple[Any, ...]:
    return (recipient.scope, recipient.practice_id, recipient.doctor_id, tuple(sorted(recipient.categories)))


def scope_data(
    session: Session,
    config: AlertsConfig,
    recipient: Recipient,
    week: Week,
    cache: dict[tuple[Any, ...], ScopeData] | None = None,
    *,
    with_file: bool = False,
) -> ScopeData:
    """The counts and top posts this recipient may see (computed once per scope when cached), and
    with_file, the file of all the week's posts."""
    key = _scope_key(recipient)
    if cache is not None and key in cache:
        return cache[key]
    weeks = [week.shifted(offset) for offset in range(1 - config.digest.trend_weeks, 1)]
    counts, totals, urgent, unlabelled = _weekly_counts(session, config, recipient, weeks)
    top = {
        label: _top_posts(session, config, recipient, week, label)
        for label in CATEGORIES
        if counts[label][-1]
    }
    if unlabelled:
        top[UNLABELLED] = _top_posts(session, config, recipient, week, UNLABELLED)
    file = digest_file(session, config, recipient, week) if with_file and totals[-1] else None
    posted_before, earliest = _posted_before(session, config, recipient, week)
    data = ScopeData(weeks, counts, totals, urgent, unlabelled, top, file, posted_before, earliest)
    if cache is not None:
        cache[key] = data
    return data


def _weekly_counts(
    session: Session, config: AlertsConfig, recipient: Recipient, weeks: list[Week]
) -> tuple[dict[str, list[int]], list[int], int, int]:
    """Mentions per category per week, in one query (the week of each is found with a CASE); and
    this week's urgent and unlabelled mentions."""
    timezone = config.digest.timezone
    bounds = [w.start(timezone) for w in weeks] + [weeks[-1].end(timezone)]
    reached = reached_between(recipient, bounds[0], bounds[-1])
    bucket = case(*[(reached.c.at < bounds[i + 1], i) for i in range(len(weeks))], else_=len(weeks))
    flags = [getattr(Classification, label) for label in LABELS]
    labelled = Classification.mention_id.is_not(None)
    neutral = labelled & not_(or_(*flags))
    urgent_labels = [label for label in ("threat", "abusive") if label in recipient.categories]
    urgent_flags = [getattr(Classification, label) for label in urgent_labels]
    urgent = func.coalesce(or_(*urgent_flags), False) if urgent_flags else false()
    shown = shown_to(recipient)
    columns = [func.sum(case((flag.is_(True), 1), else_=0)) for flag in flags]
    columns.append(func.sum(case((neutral, 1), else_=0)))
    columns.append(func.sum(case((urgent, 1), else_=0)))
    columns.append(func.sum(case((labelled, 0), else_=1)))
    rows = session.execute(
        select(bucket.label("week"), func.sum(case((shown, 1), else_=0)), *columns)
        .select_from(reached)
        .outerjoin(Classification, Classification.mention_id == reached.c.mention_id)
        .group_by("week")
    ).all()
    counts = {category: [0] * len(weeks) for category in CATEGORIES}
    totals = [0] * len(weeks)
    urgent_this_week = unlabelled_this_week = 0
    for row in rows:
        index = int(row[0])
        totals[index] = int(row[1] or 0)
        for position, category in enumerate(CATEGORIES):
            counts[category][index] = int(row[2 + position] or 0)
        if index == len(weeks) - 1:
            urgent_this_week, unlabelled_this_week = int(row[-2] or 0), int(row[-1] or 0)
    return counts, totals, urgent_this_week, unlabelled_this_week


def _posted_before(
    session: Session, config: AlertsConfig, recipient: Recipient, week: Week
) -> tuple[int, datetime | None]:
    """How many of the week's posts were posted before it began, and the earliest: a backfill, an
    import or a newly registered name brings old posts into this week's counts, and a practice
    should not read them as a sudden rise."""
    start = week.start(config.digest.timezone)
    reached = reached_between(recipient, start, week.end(config.digest.timezone))
    count, earliest = session.execute(
        select(func.count(), func.min(Mention.created_at))
        .select_from(reached)
        .join(Mention, Mention.id == reached.c.mention_id)
        .outerjoin(Classification, Classification.mention_id == reached.c.mention_id)
        .where(Mention.created_at < start, shown_to(recipient))
    ).one()
    return int(count), earliest


def _top_posts(
    session: Session, config: AlertsConfig, recipient: Recipient, week: Week, label: str
) -> list[int]:
    """The week's posts with this label, highest score first (among the most recent few hundred);
    with no label, the latest (what is said of them that needs no answer, at a glance)."""
    timezone = config.digest.timezone
    reached = reached_between(recipient, week.start(timezone), week.end(timezone))
    flags = [getattr(Classification, name) for name in LABELS]
    condition: ColumnElement[bool]
    if label == UNLABELLED:
        condition = Classification.mention_id.is_(None)
    elif label == NEUTRAL:
        condition = Classification.mention_id.is_not(None) & not_(or_(*flags))
    else:
        condition = getattr(Classification, label).is_(True)
    rows = session.execute(
        select(reached.c.mention_id, Classification.scores, Classification.model_id)
        .outerjoin(Classification, Classification.mention_id == reached.c.mention_id)
        .where(condition)
        .order_by(reached.c.at.desc(), reached.c.mention_id.desc())
        .limit(_CANDIDATES)
    ).all()
    if label not in (NEUTRAL, UNLABELLED):
        rows = sorted(rows, key=lambda row: -sureness(row.model_id, row.scores, label))
    # Enough for the section once the posts shown in the sections above it are left out.
    return [row.mention_id for row in rows[: config.digest.top_items * len(LABELS)]]


def digest_email(
    session: Session, config: AlertsConfig, recipient: Recipient, data: ScopeData
) -> tuple[RenderedEmail, list[InlineImage]]:
    """Render one recipient's digest, with its trend chart as an inline image."""
    context = digest_context(session, config, recipient, data)
    images: list[InlineImage] = []
    if context["chart"] is not None:
        chart = context["chart"]
        images.append(InlineImage(cid=chart["cid"], data=chart["png"], filename="trend.png"))
    return render_email("digest", context), images


def digest_context(
    session: Session, config: AlertsConfig, recipient: Recipient, data: ScopeData
) -> dict[str, Any]:
    wanted = [label for label in LABELS if label in recipient.categories]
    shown = [*wanted, NEUTRAL]
    week = data.weeks[-1]
    rows = [
        {
            "category": category,
            "title": LABEL_TITLES[category],
            "this_week": data.counts[category][-1],
            "last_week": data.counts[category][-2],
            "change": _change(data.counts[category][-1], data.counts[category][-2]),
        }
        for category in shown
    ]
    order = [*[label for label in wanted if label in ("threat", "abusive")], UNLABELLED,
             *[label for label in shown if label not in ("threat", "abusive")]]  # fmt: skip
    listed: dict[int, MentionView] = {}  # a post is shown once, in its most serious section
    sections = [
        _section(session, config, recipient, data, label, listed) for label in order if data.top.get(label)
    ]
    present = [label for label in wanted if data.counts[label][-1]]
    return {
        **base_context(config, recipient_reason(recipient)),
        "week": str(week),
        "week_title": week.title(),
        "scope": scope_description(recipient),
        "quiet": data.quiet,
        "total": data.totals[-1],
        "last_total": data.totals[-2],
        "attention": data.urgent,
        "unlabelled": data.unlabelled,
        "rows": rows,
        "chart": None if not any(data.totals) else _chart(config, data, shown),
        "sections": sections,
        "guidance": guidance_for(config, present),
        "for_organisation": recipient.scope is Scope.ORG,
        "file": _file_context(data),
        "posted_before": _posted_before_note(config, data),
    }


def _posted_before_note(config: AlertsConfig, data: ScopeData) -> str:
    if not data.posted_before or data.earliest is None:
        return ""
    earliest = data.earliest.astimezone(config.digest.timezone)
    when = f"{earliest.day} {earliest:%B %Y}"
    if data.posted_before == 1:
        posts, them = f"1 of these posts was posted before the week began, on {when}", "it"
    else:
        posts, them = (
            f"{data.posted_before} of these posts were posted before the week began, the earliest on {when}",
            "them",
        )
    why = "from a slow source, an import, or a name newly added to the register"
    return f"{posts}: Vigil found {them} during the week ({why})."


ESCAPED = " A cell that would start with @, =, + or - starts with ' there, so that no spreadsheet runs it."


def _file_context(data: ScopeData) -> dict[str, Any] | None:
    """What the email says of its file; ``complete`` when it holds every post of the week (then
    "And 12 more" are in it)."""
    if data.file is None:
        return None
    name, rows, total = data.file.attachment.filename, data.file.rows, data.totals[-1]
    escaped = ESCAPED if data.file.escaped else ""
    if rows < total:
        note = f"The attached file, {name}, lists {rows} of these {total} posts:"
        return {
            "note": f"{note} threats, abuse and posts not yet labelled first.{escaped}",
            "complete": False,
        }
    posts = "The post is" if total == 1 else f"All {total} posts are"
    return {"note": f"{posts} in the attached file, {name}, to sort and keep.{escaped}", "complete": True}


def _section(
    session: Session,
    config: AlertsConfig,
    recipient: Recipient,
    data: ScopeData,
    label: str,
    listed: dict[int, MentionView],
) -> dict[str, Any]:
    """A label's top posts, leaving out those a more serious section above already shows (a threat
    that is also abuse is read once), whose count the section gives as ``above``."""
    above = sum(1 for view in listed.values() if label in view.label_names)
    ids = [mention_id for mention_id in data.top[label] if mention_id not in listed][
        : config.digest.top_items
    ]
    mentions: list[MentionView] = mention_views(session, recipient, ids, config.digest.timezone)
    listed.update((view.id, view) for view in mentions)
    count = data.unlabelled if label == UNLABELLED else data.counts[label][-1]
    return {
        "label": label,
        "title": LABEL_TITLES[label],
        "count": count,
        "mentions": mentions,
        "above": above,
        "more": count - len(mentions) - above,
        "report": label in ("threat", "abusive"),
    }


def _change(this_week: int, last_week: int) -> str:
    if this_week == last_week:
        return "same"
    return f"{this_week - last_week:+d}".replace("-", "−")


def _chart(config: AlertsConfig, data: ScopeData, categories: list[str]) -> dict[str, Any]:
    from alerts.chart import NAMES, trend_chart  # matplotlib loads in a second: only when charting

    labels = tuple(f"{week.monday.day} {week.monday:%b}" for week in data.weeks)
    series = tuple((category, tuple(data.counts[category])) for category in categories)
    first, last = data.weeks[0], data.weeks[-1]
    totals = ", ".join(str(total) for total in data.totals)
    alt = (
        f"Bar chart of mentions per week, by category ({', '.join(NAMES[c] for c in categories)}),"
        f" for the {len(data.weeks)} weeks from {first.monday.day} {first.monday:%B %Y}"
        f" to {last.sunday.day} {last.sunday:%B %Y}. Posts a week: {totals}."
    )
    return {"cid": content_id(config.email, "trend"), "png": trend_chart(labels, series), "alt": alt}


def preview_html(
    session: Session, config: AlertsConfig, recipient: Recipient, week: Week
) -> tuple[str, Attachment | None]:
    """A recipient's digest as a standalone HTML page, the chart embedded, for checking by eye;
    and its file of the week's posts, if it has one."""
    data = scope_data(session, config, recipient, week, with_file=True)
    email, images = digest_email(session, config, recipient, data)
    html = email.html
    for image in images:
        encoded = base64.b64encode(image.data).decode("ascii")
        html = html.replace(f"cid:{image.cid}", f"data:image/{image.subtype};base64,{encoded}")
    return html, data.file.attachment if data.file else None
