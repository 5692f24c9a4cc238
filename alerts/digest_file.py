"""The digest's attachment: every post that reached the recipient in the week, as a CSV file.

The email lists a few posts per category; the file is the rest ("And 12 more"), for a practice
manager to sort, filter and keep with a complaint or an incident log. It holds only what the
email may hold: mentions through ``mention_views`` (``visible_to``) with the names in the
recipient's scope. Threats, abuse and posts not yet labelled come first, so that a capped file
keeps what matters.
Every cell is escaped against spreadsheet formulas (so a handle reads ``'@name``: Excel runs
``@`` as a formula too), and the file starts with a byte-order mark so that Excel reads it as
UTF-8 (accents, emoji).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, case, func, not_, or_, select, true
from sqlalchemy.orm import Session

from alerts.config import AlertsConfig
from alerts.outbox import Attachment
from alerts.views import LABEL_TITLES, MentionView, mention_views
from alerts.weeks import Week
from collector.sources.files import escape_cell
from vigil.clock import sortable_time
from vigil.labels import LABELS, sureness
from vigil.models import Classification, Recipient
from vigil.scope import reached_between

# The order of the file, and what a capped file keeps: threats, abuse, posts not yet labelled
# (they may yet be either), criticism, praise, then the rest.
ORDER = ("threat", "abusive", None, "critical", "praise")


def shown_to(recipient: Recipient) -> ColumnElement[bool]:
    """A condition on an outer-joined Classification: the recipient's categories let them see the
    post (not labelled yet, no label, or at least one label they asked for). A doctor who asked for
    threats only is not sent the week's criticism in the file, nor counted it in the totals."""
    flags = [getattr(Classification, label) for label in LABELS]
    wanted = [getattr(Classification, label) for label in LABELS if label in recipient.categories]
    none_wanted = not_(or_(*wanted)) if wanted else true()
    opted_out = Classification.mention_id.is_not(None) & or_(*flags) & none_wanted
    return not_(func.coalesce(opted_out, False))


@dataclass(frozen=True)
class DigestFile:
    attachment: Attachment
    rows: int
    escaped: bool  # some cell starts with an added ' (see ``escape_cell``)


def digest_file(
    session: Session, config: AlertsConfig, recipient: Recipient, week: Week
) -> DigestFile | None:
    """The week's posts as a CSV attachment; None when there are none or files are turned off
    (``digest.file_rows = 0``)."""
    limit = config.digest.file_rows
    if not limit:
        return None
    timezone = config.digest.timezone
    reached = reached_between(recipient, week.start(timezone), week.end(timezone))
    rank = case(
        *[
            (getattr(Classification, label).is_(True) if label else Classification.mention_id.is_(None), rank)
            for rank, label in enumerate(ORDER)
        ],
        else_=len(ORDER),
    )
    fetched = session.execute(
        select(
            reached.c.mention_id,
            reached.c.at,
            rank.label("rank"),
            Classification.scores,
            Classification.model_id,
        )
        .outerjoin(Classification, Classification.mention_id == reached.c.mention_id)
        .where(shown_to(recipient))
        .order_by(rank, reached.c.at.desc(), reached.c.mention_id.desc())
        .limit(limit)
    ).all()
    if not fetched:
        return None
    # As the email lists them: within each label, the highest score first.
    rows = sorted(fetched, key=lambda row: (row.rank, -score_for(row.model_id, row.scores, row.rank)))
    found = {row.mention_id: row.at for row in rows}
    views = mention_views(session, recipient, list(found), timezone)
    data, escaped = csv_bytes(views, found, timezone)
    attachment = Attachment(filename=f"vigil-{week}.csv", data=data, maintype="text", subtype="csv")
    return DigestFile(attachment, len(views), escaped)


def csv_bytes(views: list[MentionView], found: dict[int, datetime], timezone: ZoneInfo) -> tuple[bytes, bool]:
    """The file's bytes, and whether any cell had to be escaped."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    zone = timezone.key
    writer.writerow(
        [f"Found ({zone})", f"Posted ({zone})", "Platform", "Author", "About", "Labels", "Link", "Text"]
    )
    escaped = False
    for view in views:
        cells = [
            sortable_time(found[view.id], timezone, zone=False),
            sortable_time(view.created_at, timezone, zone=False),
            view.platform.name,
            view.author,
            "; ".join(view.names),
            label_cell(view),
            view.url,
            view.text,
        ]
        safe = [escape_cell(cell) for cell in cells]
        escaped = escaped or safe != cells
        writer.writerow(safe)
    return ("\ufeff" + out.getvalue()).encode("utf-8"), escaped


def score_for(model_id: str | None, scores: dict[str, float] | None, rank: int) -> float:
    """How sure the label a row is filed under is (0 for unlabelled and other posts)."""
    label = ORDER[rank] if rank < len(ORDER) else None
    return sureness(model_id, scores, label) if label else 0.0


def label_cell(view: MentionView) -> str:
    """``Possible threat 24%; Abuse 100%``: the score tells a weak label from a sure one."""
    if not view.labelled:
        return LABEL_TITLES["unlabelled"]
    return "; ".join(view.tags) or LABEL_TITLES["neutral"]
