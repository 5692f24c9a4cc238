"""Storing matched posts: each public post once, with the registered entities it names.

A post is stored once per (source, external id) and once per canonical URL across sources; a
post that names no registered entity is never stored. Inserts use ``ON CONFLICT DO NOTHING``, so
a post stored meanwhile by another process is skipped rather than failing the batch. The caller
owns the transaction: the runner commits a batch together with its source's checkpoint.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from collector.matching import EntityMatch
from collector.post import Post
from collector.urls import canonical_url
from vigil.models import Mention, MentionEntity

MAX_ID = 255
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass
class StoreReport:
    stored: int = 0
    duplicates: int = 0
    unmatched: int = 0

    def add(self, other: StoreReport) -> None:
        self.stored += other.stored
        self.duplicates += other.duplicates
        self.unmatched += other.unmatched


def store_matched(session: Session, matched: Iterable[tuple[Post, Sequence[EntityMatch]]]) -> StoreReport:
    """Store each post that names at least one entity, unless it is stored already."""
    report = StoreReport()
    seen: set[tuple[str, str] | str] = set()
    for post, matches in matched:
        if not matches:
            report.unmatched += 1
            continue
        values = mention_values(post)
        keys = {(values["source"], values["external_id"]), values["canonical_url"]} - {None}
        if keys & seen:
            report.duplicates += 1
            continue
        seen |= keys
        statement = insert_or_skip(session, Mention, values).returning(Mention.id)
        mention_id = session.execute(statement).scalar()
        if mention_id is None:
            report.duplicates += 1
            continue
        session.add_all(entity_rows(mention_id, matches))
        report.stored += 1
    session.flush()
    return report


def insert_or_skip(session: Session, model: type[Any], values: dict[str, Any]) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING`` on SQLite and PostgreSQL alike."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    return insert(model).values(**values).on_conflict_do_nothing()


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


def entity_rows(mention_id: int, matches: Sequence[EntityMatch]) -> list[MentionEntity]:
    rows: dict[tuple[int | None, int | None], MentionEntity] = {}
    for match in matches:
        key = (match.doctor_id, match.practice_id)
        rows.setdefault(
            key,
            MentionEntity(
                mention_id=mention_id,
                doctor_id=match.doctor_id,
                practice_id=match.practice_id,
                matched_text=clean(match.matched_text)[:MAX_ID],
                reason=clean(match.reason),
            ),
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
