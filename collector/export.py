"""``vigil mentions export``: stored mentions as JSONL or CSV, in the format ``collect import`` reads.

Each line: the mention's id (for ``vigil mentions label``), the post (``source, external_id, url,
author, created_at, text``), the entities it names (``doctors`` as GMC numbers, ``practices`` as ODS
codes), the text that matched, and the labels once classified (``classified_at`` is empty until
then; an empty ``labels`` after that means neutral). Given a recipient, only the mentions and
entities that recipient may see are written (tenant isolation: a practice's export never shows
another practice's entities).
Multi-valued CSV cells are ``;``-separated, as in the register files.
"""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from typing import Any, TextIO

from sqlalchemy import select, true
from sqlalchemy.orm import Session, selectinload

from collector.sources.files import escape_cell
from vigil.models import Mention, MentionEntity, Recipient
from vigil.scope import entity_in_scope, visible_to

FIELDS = (
    "id", "source", "external_id", "url", "author", "created_at", "text",
    "doctors", "practices", "matched_text", "labels", "classified_at",
)  # fmt: skip
CHUNK = 500
# What starts a terminal escape sequence (ESC, BEL, the C1 controls but NEL) and the bidi overrides
# and isolates that reorder what a terminal shows. A CSV cell has no way to escape them, so they
# are dropped: an export printed to a terminal cannot drive it. Everything else, line and
# paragraph separators included, is kept, so the file still imports back as it was.
_TERMINAL = re.compile("[\x07\x1b\x80-\x84\x86-\x9f\u202a-\u202e\u2066-\u2069]")


def export_mentions(
    session: Session,
    out: TextIO,
    fmt: str,
    *,
    since: datetime | None = None,
    recipient: Recipient | None = None,
) -> int:
    """Write every mention (created at or after ``since``) to ``out``; return how many."""
    writer = csv.DictWriter(out, FIELDS, lineterminator="\n") if fmt == "csv" else None
    if writer is not None:
        writer.writeheader()
    count = 0
    for record in mention_records(session, since, recipient):
        if writer is None:
            out.write(json.dumps(record) + "\n")  # ASCII: no control or bidi character reaches a terminal
        else:
            writer.writerow(
                {key: escape_cell(_TERMINAL.sub("", as_cell(value))) for key, value in record.items()}
            )
        count += 1
    return count


def mention_records(
    session: Session, since: datetime | None, recipient: Recipient | None
) -> Iterator[dict[str, Any]]:
    """Mentions in creation order, a chunk at a time (exports can be large)."""
    query = (
        select(Mention).options(selectinload(Mention.classification)).order_by(Mention.created_at, Mention.id)
    )
    if since is not None:
        query = query.where(Mention.created_at >= since)
    if recipient is not None:
        query = query.where(visible_to(recipient))
    offset = 0
    while chunk := list(session.scalars(query.offset(offset).limit(CHUNK))):
        entities = entities_of(session, [mention.id for mention in chunk], recipient)
        for mention in chunk:
            yield record_of(mention, entities[mention.id])
        offset += CHUNK
        session.expunge_all()


def entities_of(
    session: Session, ids: list[int], recipient: Recipient | None
) -> dict[int, list[MentionEntity]]:
    scope = entity_in_scope(recipient) if recipient is not None else true()
    rows = session.scalars(
        select(MentionEntity)
        .where(MentionEntity.mention_id.in_(ids), scope)
        .options(selectinload(MentionEntity.doctor), selectinload(MentionEntity.practice))
        .order_by(MentionEntity.id)
    )
    grouped: dict[int, list[MentionEntity]] = defaultdict(list)
    for row in rows:
        grouped[row.mention_id].append(row)
    return grouped


def record_of(mention: Mention, entities: list[MentionEntity]) -> dict[str, Any]:
    classification = mention.classification
    return {
        "id": mention.id,  # as `vigil mentions label` and `vigil mentions forget --id` take it
        "source": mention.source,
        "external_id": mention.external_id,
        "url": mention.url,
        "author": mention.author,
        "created_at": mention.created_at.isoformat().replace("+00:00", "Z"),
        "text": mention.text,
        "doctors": [e.doctor.gmc_number for e in entities if e.doctor is not None],
        "practices": [e.practice.ods_code for e in entities if e.practice is not None],
        "matched_text": list(dict.fromkeys(e.matched_text for e in entities)),
        "labels": classification.labels if classification else [],
        "classified_at": classification.classified_at.isoformat() if classification else "",
    }


def as_cell(value: Any) -> str:
    return ";".join(value) if isinstance(value, list) else str(value)
