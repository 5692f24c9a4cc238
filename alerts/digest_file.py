"""The digest's attachment: every post that reached the recipient in the week, as a CSV file.

The email lists a few posts per category; the file is the rest ("And 12 more"), for a practice
manager to sort, filter and keep with a complaint or an incident log. It holds only what the
email may hold: mentions through ``mention_views`` (``visible_to``) with the names in the
recipient's scope. Threats and abuse come first, so that a capped file keeps what matters.
Every cell is escaped against spreadsheet formulas (so a handle reads ``'@name``: Excel runs
``@`` as a formula too), and the file starts with a byte-order mark so that Excel reads it as
UTF-8 (accents, emoji).
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import case, select
from sqlalchemy.orm import Session

from alerts.config import AlertsConfig
from alerts.emails import LABEL_TITLES
from alerts.outbox import Attachment
from alerts.views import MentionView, mention_views
from alerts.weeks import Week
from collector.sources.files import escape_cell
from vigil.labels import LABELS
from vigil.models import Classification, Recipient
from vigil.scope import reached_between

NOT_LABELLED = "Not yet labelled"


def digest_file(
    session: Session, config: AlertsConfig, recipient: Recipient, week: Week
) -> tuple[Attachment, int] | None:
    """The week's posts as a CSV attachment, and how many rows it has; None when there are none
    or files are turned off (``digest.file_rows = 0``)."""
    limit = config.digest.file_rows
    if not limit:
        return None
    timezone = config.digest.timezone
    reached = reached_between(recipient, week.start(timezone), week.end(timezone))
    rank = case(
        *[(getattr(Classification, label).is_(True), rank) for rank, label in enumerate(LABELS)],
        (Classification.mention_id.is_(None), len(LABELS)),  # unlabelled may yet be anything
        else_=len(LABELS) + 1,
    )
    fetched = session.execute(
        select(reached.c.mention_id, reached.c.at, rank.label("rank"), Classification.scores)
        .outerjoin(Classification, Classification.mention_id == reached.c.mention_id)
        .order_by(rank, reached.c.at.desc(), reached.c.mention_id.desc())
        .limit(limit)
    ).all()
    if not fetched:
        return None
    # As the email lists them: within each label, the highest score first.
    rows = sorted(fetched, key=lambda row: (row.rank, -score_for(row.scores, row.rank)))
    found = {row.mention_id: row.at for row in rows}
    views = mention_views(session, recipient, list(found), timezone)
    data = csv_bytes(views, found, timezone)
    return Attachment(filename=f"vigil-{week}.csv", data=data, maintype="text", subtype="csv"), len(views)


def csv_bytes(views: list[MentionView], found: dict[int, datetime], timezone: ZoneInfo) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    zone = timezone.key
    writer.writerow(
        [f"Found ({zone})", f"Posted ({zone})", "Platform", "Author", "About", "Labels", "Link", "Text"]
    )
    for view in views:
        cells = [
            sortable_time(found[view.id], timezone),
            sortable_time(view.created_at, timezone),
            view.platform.name,
            view.author,
            "; ".join(view.names),
            label_cell(view),
            view.url,
            view.text,
        ]
        writer.writerow([escape_cell(cell) for cell in cells])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def score_for(scores: dict[str, float] | None, rank: int) -> float:
    """The score of the label a row is filed under (0 for unlabelled and other posts)."""
    if rank >= len(LABELS):
        return 0.0
    return float((scores or {}).get(LABELS[rank]) or 0.0)


def label_cell(view: MentionView) -> str:
    """``Possible threat 24%; Abuse 100%``: the score tells a weak label from a sure one."""
    if not view.labelled:
        return NOT_LABELLED
    titles = [f"{LABEL_TITLES[label]} {score}" for label, score in view.labels]
    return "; ".join(titles) or LABEL_TITLES["neutral"]


def sortable_time(moment: datetime, timezone: ZoneInfo) -> str:
    """``2026-11-03 14:05``: sorts as text, and spreadsheets read it as a date and time."""
    return f"{moment.astimezone(timezone):%Y-%m-%d %H:%M}"
