"""Erasure requests (UK GDPR Art. 17): finding one person's posts, and deleting them.

A request names an account on a source, a post's address, or mention ids. ``plan_erasure`` says
what would go (counts, sources, dates: never the posts' text) and which of the posts are case
evidence, which are kept unless the operator says otherwise: the defence organisation may have
to keep evidence for a claim (the same rule as retention: an open case, or one closed within
``retention.case_evidence_days``). ``erase`` deletes in batches like the retention job, notes
in each case that loses evidence that it did, and records the erasure as an operator event with
counts and ids only: the log must not itself keep what was erased. Each erased post goes on the
erasure list (``ErasedPost``, digests only), so that the collector does not store it again when a
source shows it again.

Emails already sent (or rendered and waiting) that quote the posts are not edited: they are
deleted after ``retention.outbox_days`` like every other email.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, Engine, func, or_, select
from sqlalchemy.orm import Session, aliased

from collector.store import address_key, erasure_keys, insert_or_skip
from collector.urls import canonical_url
from vigil.db import transaction
from vigil.errors import VigilError
from vigil.models import Case, CaseEvent, CaseMention, CaseStatus, ErasedPost, Mention, utcnow
from vigil.ops import raise_operator_event
from vigil.retention import BATCH_SIZE, delete_mentions, holds_evidence

log = logging.getLogger(__name__)

IDS_SHOWN = 200  # in the operator event; the rest are counted


@dataclass(frozen=True)
class Request:
    """What an erasure request names: an account on a source, a post's address, or mention ids."""

    author: str = ""
    source: str = ""
    url: str = ""
    ids: tuple[int, ...] = ()

    @property
    def kind(self) -> str:
        """How the request names posts, for the record (which must not hold the handle itself)."""
        return "author" if self.author else "url" if self.url else "id"

    def condition(self) -> ColumnElement[bool]:
        given = [bool(self.author or self.source), bool(self.url), bool(self.ids)]
        if sum(given) != 1:
            raise VigilError("name the posts one way: --author with --source, or --url, or --id")
        if self.author or self.source:
            return by_author(self.author, self.source)
        if self.url:
            return by_address(self.url)
        return Mention.id.in_(self.ids)


def by_author(handle: str, source: str) -> ColumnElement[bool]:
    """The account's posts on one source, however the source spells handles (``@name``, ``u/name``),
    or by the source's id for the account."""
    bare = handle.strip().lower().removeprefix("@").removeprefix("/").removeprefix("u/")
    if not bare or not source.strip():
        raise VigilError("--author needs a handle and --source the source it posts on (x, reddit, ...)")
    spellings = [bare, f"@{bare}", f"u/{bare}"]
    return (Mention.source == source.strip().lower()) & or_(
        func.lower(Mention.author).in_(spellings), Mention.author_id == handle.strip()
    )


def by_address(url: str) -> ColumnElement[bool]:
    """The post at this address however it was spelt (``collector.urls``), and its copies."""
    address = canonical_url(url)
    if address is None:
        raise VigilError(f"--url must be an http(s) address, not {url!r}")
    first = aliased(Mention)
    copies_of = select(first.id).where(first.canonical_url == address)
    return or_(Mention.canonical_url == address, Mention.copy_of.in_(copies_of), Mention.url == url.strip())


@dataclass(frozen=True)
class SourceSummary:
    source: str
    posts: int
    first_posted: datetime
    last_posted: datetime


@dataclass(frozen=True)
class Evidence:
    mention_id: int
    case_id: int
    status: CaseStatus
    closed_at: datetime | None


@dataclass
class ErasurePlan:
    request_kind: str
    matched: list[int]
    by_source: list[SourceSummary]
    evidence: list[Evidence]
    include_evidence: bool
    # A --url request's address, as its erasure-list digest: blocked even where a copy kept as
    # evidence still holds it, so that no new entry at it is stored for anyone.
    address_key: str | None = None

    @property
    def evidence_ids(self) -> set[int]:
        return {item.mention_id for item in self.evidence}

    @property
    def kept(self) -> list[int]:
        return [] if self.include_evidence else sorted(self.evidence_ids)

    @property
    def to_delete(self) -> list[int]:
        kept = set(self.kept)
        return [mention_id for mention_id in self.matched if mention_id not in kept]


@dataclass
class ErasureReport:
    deleted: int = 0
    cases: list[int] = field(default_factory=list)  # cases that lost evidence


def plan_erasure(
    session: Session, request: Request, closed_since: datetime, include_evidence: bool = False
) -> ErasurePlan:
    """What the request matches, by source, and which of it is case evidence (see the module notes)."""
    condition = request.condition()
    matched = list(session.scalars(select(Mention.id).where(condition).order_by(Mention.id)))
    summary = session.execute(
        select(Mention.source, func.count(), func.min(Mention.created_at), func.max(Mention.created_at))
        .where(condition)
        .group_by(Mention.source)
        .order_by(Mention.source)
    ).all()
    evidence = session.execute(
        select(CaseMention.mention_id, Case.id, Case.status, Case.closed_at)
        .join(Case, Case.id == CaseMention.case_id)
        .join(Mention, Mention.id == CaseMention.mention_id)
        .where(condition, holds_evidence(closed_since))
        .order_by(CaseMention.mention_id, Case.id)
    ).all()
    return ErasurePlan(
        request_kind=request.kind,
        matched=matched,
        by_source=[SourceSummary(*row) for row in summary],
        evidence=[Evidence(*row) for row in evidence],
        include_evidence=include_evidence,
        address_key=address_key(address) if (address := canonical_url(request.url)) else None,
    )


def erase(engine: Engine, plan: ErasurePlan, actor: str, batch_size: int = BATCH_SIZE) -> ErasureReport:
    """Delete what the plan says, a batch per transaction; then record it for the operator.

    A crash part-way leaves every batch either erased or not; running the request again erases
    the rest (and records it again)."""
    report = ErasureReport()
    for batch in chunks(plan.to_delete, batch_size):
        with transaction(engine) as session:
            report.cases += note_lost_evidence(session, plan, batch, actor)
            keys = post_keys(session, batch)
            report.deleted += delete_mentions(session, batch)
            remember_erased(session, keys)
    with transaction(engine) as session:
        if plan.address_key is not None:
            block(session, [plan.address_key])
        record_erasure(session, plan, report, actor)
    return report


def post_keys(session: Session, ids: Sequence[int]) -> list[tuple[str | None, list[str]]]:
    """Each mention's address and its erasure-list keys (``collector.store.erasure_keys``)."""
    rows = session.execute(
        select(Mention.source, Mention.external_id, Mention.canonical_url).where(Mention.id.in_(ids))
    ).all()
    return [(row.canonical_url, erasure_keys(row._asdict())) for row in rows]


def remember_erased(session: Session, posts: list[tuple[str | None, list[str]]]) -> None:
    """Put the erased posts on the erasure list, once deleted: each by its id on its source, and by
    its address unless a copy that stays has taken the address on (``hand_on_addresses``: an
    article that reached two practices, one of whose entries was erased by id)."""
    addresses = [address for address, _ in posts if address]
    handed_on = set(
        session.scalars(select(Mention.canonical_url).where(Mention.canonical_url.in_(addresses)))
    )
    block(session, [key for address, keys in posts for key in (keys[:1] if address in handed_on else keys)])


def block(session: Session, keys: Sequence[str]) -> None:
    now = utcnow()
    for key in keys:
        session.execute(insert_or_skip(session, ErasedPost, {"key": key, "erased_at": now}))


def chunks(ids: Sequence[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


def note_lost_evidence(session: Session, plan: ErasurePlan, batch: Sequence[int], actor: str) -> list[int]:
    """Tell each case whose evidence goes in this batch (the case team must know why it is gone)."""
    in_batch = set(batch)
    lost: dict[int, list[int]] = {}
    for item in plan.evidence:
        if item.mention_id in in_batch:
            lost.setdefault(item.case_id, []).append(item.mention_id)
    now = utcnow()
    for case_id, mention_ids in lost.items():
        note = f"{len(mention_ids)} post(s) erased on an erasure request: mention(s) {_ids(mention_ids)}"
        session.add(
            CaseEvent(case_id=case_id, at=now, actor=actor[:200], action="evidence_erased", note=note)
        )
    return sorted(lost)


def record_erasure(session: Session, plan: ErasurePlan, report: ErasureReport, actor: str) -> None:
    """An operator event (logged, and emailed to the operator) with counts and ids: no text, no handle."""
    sources = ", ".join(f"{item.source} {item.posts}" for item in plan.by_source)
    message = (
        f"{report.deleted} mention(s) erased by {actor} on an erasure request by {plan.request_kind}"
        f" ({sources}): {_ids(plan.to_delete)}."
    )
    if plan.kept:
        message += f" Kept as case evidence: {_ids(plan.kept)}."
    if report.cases:
        message += f" Evidence erased from case(s) {_ids(report.cases)}."
    raise_operator_event(session, "erasure", "Posts erased on request", message, level=logging.WARNING)


def _ids(ids: Sequence[int]) -> str:
    shown = ", ".join(str(i) for i in ids[:IDS_SHOWN])
    return shown + (f" and {len(ids) - IDS_SHOWN} more" if len(ids) > IDS_SHOWN else "") if ids else "none"
