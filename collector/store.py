"""Storing matched posts: each public post once, with the registered entities it names.

A post is stored once per (source, external id) and once per canonical URL across sources; a
post that names no registered entity is never stored. Inserts use ``ON CONFLICT DO NOTHING``, so
a post stored meanwhile by another process is skipped rather than failing the batch. The caller
owns the transaction: the runner commits a batch together with its source's checkpoint.

An article reaches each practice once. Another entry at a stored post's address can name
someone at a practice it has not reached: one news article reaches two doctors' Google Alerts
feeds, each entry with the snippet around its own doctor's name. That entry is stored as its own
mention (``copy_of`` the first; its address left out of the unique key), linked only to them, so
each practice sees its own snippet with its own labels and nothing of another member's. The same
post seen again after the register has grown (the very same text) is linked to the entities of
new practices instead. A doctor named at a practice the article has reached is linked to the
mention that reached it: a recipient for that doctor alone hears of the article, as the practice
saw it (the snippet around a colleague's name, with its labels). Either way the mention is routed
again, which alerts only recipients not yet alerted of it, and case detection scans it again.
Posts without an address are never joined this way: their ids are typed by people (file
imports), and two unrelated rows can share one. Storing holds the routing lock (see
``store_matched``), so two collectors join one at a time.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from collector.matching import EntityMatch
from collector.post import Post
from collector.urls import canonical_url
from vigil.claims import lock_routing
from vigil.models import Classification, Doctor, ErasedPost, Mention, MentionEntity, RoutedMention, utcnow

MAX_ID = 255
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass
class StoreReport:
    stored: int = 0
    duplicates: int = 0
    unmatched: int = 0
    linked: int = 0  # posts seen again that named someone new, now linked to them
    erased: int = 0  # posts erased on request, not stored again

    def add(self, other: StoreReport) -> None:
        self.stored += other.stored
        self.duplicates += other.duplicates
        self.unmatched += other.unmatched
        self.linked += other.linked
        self.erased += other.erased


def store_matched(session: Session, matched: Iterable[tuple[Post, Sequence[EntityMatch]]]) -> StoreReport:
    """Store each post that names at least one entity, once; see the module notes for copies.

    The routing lock is taken before the first post and held to the end of the caller's
    transaction, because a post may link a routed mention to someone new (``route_again``). It
    also makes collectors store one at a time, so two never join one article at once, nor wait
    on each other's rows in opposite orders. A post erased on request (``vigil.erasure``) is not
    stored again, whichever source shows it again: the erasure holds the same lock.
    """
    report = StoreReport()
    named: list[tuple[dict[str, Any], Sequence[EntityMatch]]] = []
    for post, matches in matched:
        if matches:
            named.append((mention_values(post), matches))
        else:
            report.unmatched += 1
    if not named:
        return report
    lock_routing(session)
    erased = erased_among(session, [key for values, _ in named for key in erasure_keys(values)])
    for values, matches in named:
        if erased.intersection(erasure_keys(values)):
            report.erased += 1
            continue
        stored = insert_mention(session, values, matches)
        outcome = "stored" if stored else store_copy(session, values, matches)
        if outcome == "stored":
            report.stored += 1
        else:
            report.duplicates += 1
            report.linked += outcome == "linked"
    session.flush()
    return report


def erasure_keys(values: dict[str, Any]) -> list[str]:
    """Digests that name a stored post on the erasure list: its id on its source, then its address."""
    keys = [_digest("post", values["source"], values["external_id"])]
    if values.get("canonical_url"):
        keys.append(address_key(values["canonical_url"]))
    return keys


def address_key(address: str) -> str:
    """The erasure-list digest of a canonical address (``collector.urls``)."""
    return _digest("address", address)


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def erased_among(session: Session, keys: Sequence[str]) -> set[str]:
    """Those of ``keys`` that are on the erasure list (``vigil.erasure``)."""
    found: set[str] = set()
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        found.update(session.scalars(select(ErasedPost.key).where(ErasedPost.key.in_(chunk))))
    return found


def insert_mention(session: Session, values: dict[str, Any], matches: Sequence[EntityMatch]) -> bool:
    """Insert the mention and its entities; False if its keys are taken."""
    statement = insert_or_skip(session, Mention, values).returning(Mention.id)
    mention_id = session.execute(statement).scalar()
    if mention_id is None:
        return False
    session.add_all(entity_rows(mention_id, matches))
    return True


def store_copy(session: Session, values: dict[str, Any], matches: Sequence[EntityMatch]) -> str | None:
    """A post whose keys are taken: "stored" as a copy, "linked" to new entities, or None."""
    address = values["canonical_url"]
    if address is None:
        return None
    first = session.scalar(select(Mention.id).where(Mention.canonical_url == address))
    if first is None:
        return None
    new, colleagues = unreached(session, first, matches)
    for reacher, doctors in colleagues.items():
        session.add_all(entity_rows(reacher, doctors))
        route_again(session, reacher)
    if not new:
        return "linked" if colleagues else None
    same = session.scalar(select(Mention.id).where(article(first), Mention.text == values["text"]).limit(1))
    if same is None:
        copy = {**values, "canonical_url": None, "copy_of": first}
        return "stored" if insert_mention(session, copy, new) else None
    session.add_all(entity_rows(same, new))
    route_again(session, same)
    return "linked"


Entity = tuple[int | None, int | None]  # (doctor id, practice id), one of them set


def unreached(
    session: Session, first: int, matches: Sequence[EntityMatch]
) -> tuple[list[EntityMatch], dict[int, list[EntityMatch]]]:
    """Whom the post names that the article (all entries at its address) has not reached: those at
    practices it has not reached; and doctors at practices it has, by the mention that reached
    each practice (their practice has the article; they, as recipients of their own, have not)."""
    rows = session.execute(
        select(MentionEntity.mention_id, MentionEntity.doctor_id, MentionEntity.practice_id)
        .join(Mention, Mention.id == MentionEntity.mention_id)
        .where(article(first))
        .order_by(MentionEntity.mention_id)
    ).all()
    linked: list[Entity] = [(row.doctor_id, row.practice_id) for row in rows]
    unlinked = [match for match in matches if (match.doctor_id, match.practice_id) not in linked]
    if not unlinked:  # a post seen again, as most are: no need to look up practices
        return [], {}
    named: list[Entity] = [(match.doctor_id, match.practice_id) for match in unlinked]
    practice = practices_of(session, [*named, *linked])
    reacher: dict[tuple[str, int | None], int] = {}
    for row, entity in zip(rows, linked, strict=True):
        reacher.setdefault(practice[entity], row.mention_id)
    new: list[EntityMatch] = []
    colleagues: dict[int, list[EntityMatch]] = {}
    for match, entity in zip(unlinked, named, strict=True):
        if practice[entity] not in reacher:
            new.append(match)
        elif match.doctor_id is not None:  # a practice reached is not linked again
            colleagues.setdefault(reacher[practice[entity]], []).append(match)
    return new, colleagues


def article(first: int) -> ColumnElement[bool]:
    """The mentions of one article: the first stored at its address and the copies tied to it."""
    return or_(Mention.id == first, Mention.copy_of == first)


def practices_of(session: Session, entities: list[Entity]) -> dict[Entity, tuple[str, int | None]]:
    """Each entity's practice (a doctor without a practice stands for themself)."""
    doctors = [doctor_id for doctor_id, _ in entities if doctor_id is not None]
    query = select(Doctor.id, Doctor.practice_id).where(Doctor.id.in_(doctors))
    practice_of_doctor = {row.id: row.practice_id for row in session.execute(query)}
    keys: dict[Entity, tuple[str, int | None]] = {}
    for doctor_id, practice_id in entities:
        if doctor_id is None:
            keys[doctor_id, practice_id] = ("practice", practice_id)
        elif (practice := practice_of_doctor.get(doctor_id)) is not None:
            keys[doctor_id, practice_id] = ("practice", practice)
        else:
            keys[doctor_id, practice_id] = ("doctor", doctor_id)
    return keys


def route_again(session: Session, mention_id: int) -> None:
    """Let routing see the mention's new entities (it alerts only recipients it has not alerted of
    it) and case detection scan it again. Its labels stay: labelling it again could change them
    under alerts already sent. Routing waits for this transaction (``store_matched`` holds the
    routing lock), so no pass can mark the mention routed while missing the new links."""
    session.execute(delete(RoutedMention).where(RoutedMention.mention_id == mention_id))
    session.execute(
        update(Classification).where(Classification.mention_id == mention_id).values(routing_pending=True)
    )
    session.execute(
        update(Mention)
        .where(Mention.id == mention_id)
        .values(detected_at=None, detect_claimed_by=None, detect_claimed_at=None)
        .execution_options(synchronize_session=False)
    )


def insert_or_skip(session: Session, model: type[Any], values: dict[str, Any]) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING`` on SQLite and PostgreSQL alike."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    return insert(model).values(**values).on_conflict_do_nothing()


def mention_values(post: Post) -> dict[str, Any]:
    """The row for a post: text cleaned of NUL characters, fields clipped to their columns, and
    dated no later than now. A post's date is often written by its author's client (Bluesky,
    Mastodon, feeds): one dated next year would stay "new" to case detection, and top every
    listing, until then."""
    return {
        "source": post.source[:32],
        "external_id": stable_id(post.external_id),
        "url": clean(post.url),
        "canonical_url": canonical_url(post.url),
        "author": clean(post.author)[:MAX_ID],
        "author_id": clip(post.author_id),
        "created_at": min(post.created_at, utcnow()),
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
