"""Retention and erasure: posts and sent emails are deleted once kept long enough, or on request.

UK GDPR's storage limitation says personal data is kept no longer than needed: every day the
``retention`` job deletes mentions collected more than ``retention.mentions_days`` ago, sent
or failed emails (which quote posts and hold addresses) created more than
``retention.outbox_days`` ago, and the ``file`` email backend's .eml files as old. A mention
that is evidence in a case is kept while the case is open and for
``retention.case_evidence_days`` after it closes (six years: the limitation period for claims
in England and Wales). ``vigil mentions forget`` erases one person's posts on request
(Art. 17), and keeps case evidence unless told otherwise.

Deleting a mention deletes its entities, classification, routing row, alert links and case links
explicitly (the foreign keys cascade too, but nothing here relies on it). Alerts and cases stay:
they are the history of what was sent and decided, and hold no post text. A copy of a deleted
post (``copy_of``) that stays takes over the post's address, so that the article seen again is
still known to have reached that practice.

Work is done in batches of ``BATCH_SIZE`` rows, each its own transaction: SQLite's write lock and
PostgreSQL's row locks are held briefly, a crash leaves every batch either done or not, and the
next run carries on. Running twice does no harm: what is gone is not found again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import ColumnElement, Delete, Engine, delete, exists, func, or_, select, update
from sqlalchemy.orm import Session

from alerts.transports.file import delete_written_before
from vigil.claims import lock_routing
from vigil.db import transaction
from vigil.errors import VigilError
from vigil.models import (
    AlertMention,
    Case,
    CaseMention,
    CaseStatus,
    Classification,
    Mention,
    MentionEntity,
    OutboxMessage,
    OutboxStatus,
    RoutedMention,
    utcnow,
)
from vigil.settings import Settings

if TYPE_CHECKING:
    from vigil.runtime import Runtime
    from vigil.scheduler import JobSpec

log = logging.getLogger(__name__)

BATCH_SIZE = 1000
FINISHED = (OutboxStatus.SENT, OutboxStatus.FAILED)  # never pending or sending: not yet sent


@dataclass(frozen=True)
class Retention:
    """How long things are kept, from the ``retention`` settings."""

    mentions: timedelta
    case_evidence: timedelta
    outbox: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> Retention:
        check_retention(settings)
        return cls(
            mentions=timedelta(days=int(settings.retention.mentions_days)),
            case_evidence=timedelta(days=int(settings.retention.case_evidence_days)),
            outbox=timedelta(days=int(settings.retention.outbox_days)),
        )


def days_needed(settings: Settings) -> dict[str, int]:
    """Days of mentions each step looks back on, by the setting that says so: a shorter retention
    would empty the digests' trend chart and blind case detection to an entity's history."""
    cases = settings.cases
    return {
        "digest.trend_weeks": 7 * int(settings.digest.trend_weeks) + 8,  # the weeks, and a day's catch-up
        "cases.spike_history_days": int(cases.spike_history_days) + -(-int(cases.spike_window_hours) // 24),
        "cases.campaign_days": int(cases.campaign_days),
    }


def check_retention(settings: Settings) -> None:
    """Refuse a retention that would delete what the pipeline still reads (``vigil run`` and the
    job call this, so the mistake stops start-up instead of quietly breaking digests)."""
    days = int(settings.retention.mentions_days)
    setting, needed = max(days_needed(settings).items(), key=lambda item: item[1])
    if days < needed:
        raise VigilError(
            f"retention.mentions_days is {days}, but {setting} looks back {needed} days:"
            f" keep mentions at least {needed} days"
        )


@dataclass
class PurgeReport:
    mentions: int = 0
    emails: int = 0
    email_files: int = 0
    kept_as_evidence: int = 0
    batches: int = 0
    stopped: bool = False

    def __str__(self) -> str:
        text = (
            f"{self.mentions} mentions, {self.emails} sent emails and {self.email_files} .eml files deleted"
            f" in {self.batches} batches; {self.kept_as_evidence} past retention kept as case evidence"
        )
        return text + (" (stopped early: the next run carries on)" if self.stopped else "")


# --- the daily purge -----------------------------------------------------------------------------


def purge(
    engine: Engine,
    retention: Retention,
    now: datetime,
    *,
    batch_size: int = BATCH_SIZE,
    stop: threading.Event | None = None,
    outbox_dir: Path | None = None,
) -> PurgeReport:
    """Delete every mention and finished email past its retention, a batch per transaction, and
    the .eml files the ``file`` backend wrote in ``outbox_dir`` as long ago as those emails."""
    report = PurgeReport()
    mention_cutoff, evidence_cutoff = now - retention.mentions, now - retention.case_evidence

    def mentions_batch(session: Session) -> int:
        lock_routing(session)
        ids = expired_mentions(session, mention_cutoff, evidence_cutoff, batch_size)
        report.mentions += delete_mentions(session, ids)
        return len(ids)

    def emails_batch(session: Session) -> int:
        ids = expired_emails(session, now - retention.outbox, batch_size)
        report.emails += delete_emails(session, ids)
        return len(ids)

    for batch in (mentions_batch, emails_batch):
        report.batches += in_batches(engine, batch, batch_size, stop)
    report.stopped = stop is not None and stop.is_set()
    if outbox_dir is not None and not report.stopped:
        report.email_files = delete_email_files(outbox_dir, now - retention.outbox)
    with transaction(engine) as session:
        report.kept_as_evidence = count_kept_as_evidence(session, mention_cutoff, evidence_cutoff)
    log.info("retention: %s", report)
    return report


def in_batches(
    engine: Engine, batch: Callable[[Session], int], batch_size: int, stop: threading.Event | None
) -> int:
    """Run ``batch`` (which returns how many rows it found) each in its own transaction until it
    finds fewer than a full batch, or ``stop`` is set; return the batches that did something."""
    done = 0
    while stop is None or not stop.is_set():
        with transaction(engine) as session:
            found = batch(session)
        done += found > 0
        if found < batch_size:
            break
    return done


def holds_evidence(closed_since: datetime) -> ColumnElement[bool]:
    """The case still holds its evidence: it is open, or closed at or after ``closed_since``
    (closed cases never reopen, so that time only moves away)."""
    return or_(Case.status != CaseStatus.CLOSED, Case.closed_at.is_(None), Case.closed_at >= closed_since)


def held_as_evidence(closed_since: datetime) -> ColumnElement[bool]:
    """The mention is evidence in a case that still holds its evidence."""
    return exists(
        select(CaseMention.case_id)
        .join(Case, Case.id == CaseMention.case_id)
        .where(CaseMention.mention_id == Mention.id, holds_evidence(closed_since))
    )


def expired_mentions(
    session: Session, collected_before: datetime, closed_since: datetime, limit: int
) -> list[int]:
    query = (
        select(Mention.id)
        .where(Mention.collected_at < collected_before, ~held_as_evidence(closed_since))
        .order_by(Mention.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def count_kept_as_evidence(session: Session, collected_before: datetime, closed_since: datetime) -> int:
    query = select(func.count(Mention.id)).where(
        Mention.collected_at < collected_before, held_as_evidence(closed_since)
    )
    return int(session.scalar(query) or 0)


def expired_emails(session: Session, created_before: datetime, limit: int) -> list[int]:
    query = (
        select(OutboxMessage.id)
        .where(OutboxMessage.status.in_(FINISHED), OutboxMessage.created_at < created_before)
        .order_by(OutboxMessage.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def delete_emails(session: Session, ids: Sequence[int]) -> int:
    """Delete these emails if still finished (``vigil alerts retry`` may have queued one again)."""
    if not ids:
        return 0
    return _delete(
        session, delete(OutboxMessage).where(OutboxMessage.id.in_(ids), OutboxMessage.status.in_(FINISHED))
    )


def delete_email_files(folder: Path, written_before: datetime) -> int:
    """The ``file`` backend's .eml files hold what the outbox rows hold: they go as old, whichever
    backend is set now (files written before a switch to SMTP stay personal data)."""
    try:
        return delete_written_before(folder, written_before)
    except OSError as exc:
        raise VigilError(
            f"cannot delete old .eml files in {folder} (email.outbox_dir): {exc.strerror or exc}"
        ) from exc


def delete_mentions(session: Session, ids: Sequence[int]) -> int:
    """Delete these mentions and every row that links to them, in the caller's transaction.

    Holds the routing lock (see ``vigil.claims``), so that no collector links a post being
    deleted to someone new, nor routing alerts of it, meanwhile."""
    if not ids:
        return 0
    lock_routing(session)
    hand_on_addresses(session, ids)
    for child in (MentionEntity, Classification, RoutedMention, AlertMention, CaseMention):
        _delete(session, delete(child).where(child.mention_id.in_(ids)))
    return _delete(session, delete(Mention).where(Mention.id.in_(ids)))


def _delete(session: Session, statement: Delete) -> int:
    result = session.execute(statement.execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


def hand_on_addresses(session: Session, ids: Sequence[int]) -> None:
    """A post being deleted whose copies (``copy_of``) stay: the first copy that stays takes its
    address and becomes the one the others are copies of. Otherwise the article seen again
    would be stored afresh, and reach practices it has already reached."""
    staying = session.execute(
        select(Mention.id, Mention.copy_of)
        .where(Mention.copy_of.in_(ids), Mention.id.not_in(ids))
        .order_by(Mention.id)
    ).all()
    heirs: dict[int, int] = {}
    for row in staying:
        heirs.setdefault(row.copy_of, row.id)
    for first, heir in heirs.items():
        address = session.scalar(select(Mention.canonical_url).where(Mention.id == first))
        _update(session, Mention.id == first, canonical_url=None)  # the address is unique: free it first
        _update(session, Mention.id == heir, canonical_url=address, copy_of=None)
        _update(session, (Mention.copy_of == first) & (Mention.id != heir), copy_of=heir)


def _update(session: Session, condition: ColumnElement[bool], **values: Any) -> None:
    session.execute(
        update(Mention).where(condition).values(**values).execution_options(synchronize_session=False)
    )


# --- the scheduled job ---------------------------------------------------------------------------


def purge_expired(runtime: Runtime, stop: threading.Event | None = None) -> PurgeReport:
    """One purge with the runtime's settings, now."""
    settings = runtime.settings
    retention = Retention.from_settings(settings)
    return purge(runtime.engine, retention, utcnow(), stop=stop, outbox_dir=settings.email.outbox_dir)


def retention_job() -> None:
    """Scheduled daily (module-level and argument-free: APScheduler pickles it, see vigil.scheduler)."""
    from vigil.scheduler import STOPPING, current_runtime
    from vigil.service import recorded

    runtime = current_runtime()
    recorded(runtime, "retention", lambda: purge_expired(runtime, STOPPING))


def retention_jobs(settings: Settings) -> list[JobSpec]:
    """Daily at 03:17 UTC, when little else runs (and once at the first start)."""
    from vigil.scheduler import JobSpec

    trigger = CronTrigger(hour=3, minute=17, timezone=UTC)
    return [
        JobSpec("retention", "vigil.retention:retention_job", trigger, name="Delete what is past retention")
    ]
