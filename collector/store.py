"""Storing matched posts: each public post once, with the registered entities it names.

A post is stored once per (source, external id) and once per canonical URL across sources; a
post that names no registered entity is never stored. Inserts use ``ON CONFLICT DO NOTHING``, so
a post stored meanwhile by another process is skipped rather than failing the batch. The caller
owns the transaction: the runner commits a batch together with its source's checkpoint.

A copy of a stored post can name someone the stored one does not: one news article reaches two
doctors' Google Alerts feeds, each entry with the snippet around its own doctor's name, under the
same address. The copy's entities are then linked to the stored mention and its text appended,
and the mention goes back through the pipeline: its labels are dropped (the classifier labels
the whole text again, and routing then alerts the new entities' recipients, never the same
recipient twice) and case detection scans it again. Otherwise the second doctor would never hear
of it, or would see labels given to a snippet about someone else.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from collector.matching import EntityMatch
from collector.post import Post
from collector.urls import canonical_url
from vigil.models import Classification, Mention, MentionEntity

MAX_ID = 255
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass
class StoreReport:
    stored: int = 0
    duplicates: int = 0
    unmatched: int = 0
    linked: int = 0  # duplicates that named someone new, linked to the stored mention

    def add(self, other: StoreReport) -> None:
        self.stored += other.stored
        self.duplicates += other.duplicates
        self.unmatched += other.unmatched
        self.linked += other.linked


def store_matched(session: Session, matched: Iterable[tuple[Post, Sequence[EntityMatch]]]) -> StoreReport:
    """Store each post that names at least one entity; a copy of a stored one only adds whom it names."""
    report = StoreReport()
    for post, matches in matched:
        if not matches:
            report.unmatched += 1
            continue
        values = mention_values(post)
        statement = insert_or_skip(session, Mention, values).returning(Mention.id)
        mention_id = session.execute(statement).scalar()
        if mention_id is None:
            report.duplicates += 1
            report.linked += link_copy(session, values, matches)
            continue
        session.add_all(MentionEntity(**row) for row in entity_rows(mention_id, matches))
        report.stored += 1
    session.flush()
    return report


def link_copy(session: Session, values: dict[str, Any], matches: Sequence[EntityMatch]) -> int:
    """Link the entities a copy names that its stored mention lacks; 1 if there were any."""
    same = (Mention.source == values["source"]) & (Mention.external_id == values["external_id"])
    if values["canonical_url"] is not None:
        same = or_(same, Mention.canonical_url == values["canonical_url"])
    stored = session.scalars(
        select(Mention).where(same).order_by(Mention.id).limit(1).with_for_update()
    ).one()
    statement = insert_or_skip(session, MentionEntity, entity_rows(stored.id, matches))
    if not session.execute(statement.returning(MentionEntity.id)).all():  # each entity is linked once
        return 0
    if values["text"] not in stored.text:
        stored.text = f"{stored.text}\n\n{values['text']}"
    send_back_through_pipeline(session, stored)
    return 1


def send_back_through_pipeline(session: Session, mention: Mention) -> None:
    """Drop the labels and the claims of workers busy with the old text (their results are
    discarded), so the classifier labels the mention again, then routing and detection see it anew."""
    session.execute(delete(Classification).where(Classification.mention_id == mention.id))
    mention.classify_claimed_by = mention.classify_claimed_at = None
    mention.detect_claimed_by = mention.detect_claimed_at = mention.detected_at = None
    session.flush()


def insert_or_skip(session: Session, model: type[Any], values: dict[str, Any] | list[dict[str, Any]]) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING`` on SQLite and PostgreSQL alike."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    return insert(model).values(values).on_conflict_do_nothing()


def mention_values(post: Post) -> dict[str, Any]:
    """The row for a post: text cleaned of NUL characters, fields clipped to their columns."""
    return {
        "source": post.source[:32],
        "external_id": stable_id(post.external_id),
        "url": clean(post.url),
        "canonical_url": canonical_url(post.url),
        "author": clean(post.author)[:MAX_ID],
        "author_id": clip(post.author_id),
        "created_at": post.created_at,
        "text": clean(post.text),
        "lang": clip(post.lang, 16),
        "conversation_id": clip(post.conversation_id),
        "in_reply_to": clip(post.in_reply_to),
        "extra": post.extra,
    }


def entity_rows(mention_id: int, matches: Sequence[EntityMatch]) -> list[dict[str, Any]]:
    rows: dict[tuple[int | None, int | None], dict[str, Any]] = {}
    for match in matches:
        rows.setdefault(
            (match.doctor_id, match.practice_id),
            {
                "mention_id": mention_id,
                "doctor_id": match.doctor_id,
                "practice_id": match.practice_id,
                "matched_text": clean(match.matched_text)[:MAX_ID],
                "reason": clean(match.reason),
            },
        )
    return list(rows.values())


def stable_id(external_id: str) -> str:
    """The external id, or a digest of it when it is too long for the column (some feed GUIDs)."""
    external_id = clean(external_id)
    if len(external_id) <= MAX_ID:
        return external_id
    return "sha256:" + hashlib.sha256(external_id.encode()).hexdigest()


def clean(text: str | None) -> str:
    """Text any database can store: scraped text sometimes holds NUL characters, which PostgreSQL
    refuses, or a lone surrogate (half an emoji cut off by a truncating API), which is valid JSON
    but cannot be encoded as UTF-8; it becomes U+FFFD, the replacement character."""
    return _LONE_SURROGATE.sub("\ufffd", (text or "").replace("\x00", ""))


def clip(value: str | None, length: int = MAX_ID) -> str | None:
    return clean(value)[:length] if value else None
