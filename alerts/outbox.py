"""The outbox: every email is rendered and stored under an idempotency key, then sent exactly once.

Storing before sending makes enqueueing part of the transaction that decided to send (routing a
mention, building a digest): if that transaction rolls back, no email exists; if it commits, the
email will be sent, even if the process dies a moment later. The unique key makes a second
enqueue of the same email (a job run twice, on two workers) a no-op.

Sending, and what a crash at each point does:

1. A sender claims a batch with a conditional UPDATE (``vigil.claims.claim``). Crash here: the
   claim lapses after ``email.lease_seconds`` and another pass takes the batch. Nothing was sent.
2. Just before handing a message to the server, the sender marks it ``sending`` (renewing its
   claim) and commits. Crash before the server accepts it: the message was not delivered, and it
   is sent again once the lease lapses.
3. The server accepts the message; the sender marks it ``sent`` and commits. A crash in the
   moment between the two (a few milliseconds: one UPDATE) is the one case SMTP cannot settle:
   the message was delivered, but the database still says ``sending``. It is sent again after the
   lease, with the same Message-ID, so the repeat is recognisable (and mail systems that drop
   duplicate Message-IDs, such as Gmail, show it once); it is logged as a possible duplicate.
   Losing a threat alert would be worse than a second copy of it.

So each message is delivered at least once, and more than once only if a sender dies inside
that window: at most one message per crash.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from tenacity import RetryCallState, wait_exponential, wait_random

from alerts.config import EmailConfig
from alerts.render import RenderedEmail, oneline
from alerts.transports import Email, Transport, TransportError, make_transport
from vigil.claims import claim
from vigil.clock import sortable_time
from vigil.db import transaction
from vigil.models import OperatorEvent, OutboxMessage, OutboxStatus, Recipient, utcnow
from vigil.ops import raise_operator_event
from vigil.runtime import Runtime

log = logging.getLogger(__name__)

URGENT, NORMAL = 0, 1  # alerts and operator emails go before digests
# Kinds of email a recipient subscribes to, which carry List-Unsubscribe: the weekly digests.
# Never a safety alert, which one tap in a mail client should not seem to end.
SUBSCRIPTIONS = frozenset({"digest", "cases-digest"})


@dataclass(frozen=True)
class InlineImage:
    """An image shown inside the HTML part, referenced there as ``cid:{cid}``."""

    cid: str
    data: bytes
    subtype: str = "png"
    filename: str = "image.png"


@dataclass(frozen=True)
class Attachment:
    """A file the recipient can open or save, e.g. the digest's list of the week's posts."""

    filename: str
    data: bytes
    maintype: str = "application"
    subtype: str = "octet-stream"


def content_id(config: EmailConfig, name: str) -> str:
    """A globally unique Content-ID for an inline image (without the angle brackets)."""
    return make_msgid(idstring=name, domain=config.domain)[1:-1]


def compose(
    config: EmailConfig,
    *,
    message_id: str,
    date: datetime,
    recipient_email: str,
    recipient_name: str,
    subject: str,
    text: str,
    html: str,
    images: Sequence[InlineImage] = (),
    attachments: Sequence[Attachment] = (),
    unsubscribe: bool = True,
) -> bytes:
    """The complete message: multipart/alternative (text, then HTML with its inline images),
    inside multipart/mixed with the attachments if there are any."""
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = Address(display_name=oneline(config.from_name), addr_spec=config.from_address)
    message["To"] = Address(display_name=oneline(recipient_name), addr_spec=recipient_email)
    message["Subject"] = oneline(subject, 250)
    message["Date"] = format_datetime(date)
    message["Message-ID"] = message_id
    if unsubscribe:
        message["List-Unsubscribe"] = ", ".join(f"<{target}>" for target in unsubscribe_targets(config))
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: autoresponders must not reply
    message["X-Auto-Response-Suppress"] = "All"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    html_part = message.get_body(("html",))
    if images and html_part is not None:
        for image in images:
            html_part.add_related(
                image.data,
                maintype="image",
                subtype=image.subtype,
                cid=f"<{image.cid}>",
                filename=image.filename,
                disposition="inline",
            )
    for attachment in attachments:
        message.add_attachment(
            attachment.data,
            maintype=attachment.maintype,
            subtype=attachment.subtype,
            filename=attachment.filename,
        )
    return message.as_bytes()


def unsubscribe_targets(config: EmailConfig) -> list[str]:
    targets = [f"mailto:{config.unsubscribe_mailto}?subject=unsubscribe"]
    if config.unsubscribe_url:
        targets.insert(0, config.unsubscribe_url)
    return targets


def enqueue(
    session: Session,
    config: EmailConfig,
    *,
    key: str,
    kind: str,
    recipient_email: str,
    subject: str,
    text: str,
    html: str,
    images: Sequence[InlineImage] = (),
    attachments: Sequence[Attachment] = (),
    recipient_name: str = "",
    recipient_id: int | None = None,
    priority: int = NORMAL,
    now: datetime | None = None,
) -> bool:
    """Store one rendered email under ``key``, in the caller's transaction; False if the key exists.

    ``key`` names the email for good: recipient, kind and the period or item it is about, e.g.
    ``digest:r42:2026-W45``. Render with ``alerts.render.render_email``; get ``config`` from
    ``alerts.config.load_config(settings).email``.
    """
    now = now or utcnow()
    message_id = make_msgid(idstring=re.sub(r"[^a-z0-9-]", "", kind.lower()) or "vigil", domain=config.domain)
    raw = compose(
        config,
        message_id=message_id,
        date=now,
        recipient_email=recipient_email,
        recipient_name=recipient_name,
        subject=subject,
        text=text,
        html=html,
        images=images,
        attachments=attachments,
        unsubscribe=kind in SUBSCRIPTIONS,
    )
    dialect = sqlite if session.get_bind().dialect.name == "sqlite" else postgresql
    statement = (
        dialect.insert(OutboxMessage)
        .values(
            key=key,
            kind=kind,
            priority=priority,
            recipient_email=recipient_email,
            recipient_id=recipient_id,
            message_id=message_id,
            subject=oneline(subject, 250),
            raw=raw,
            status=OutboxStatus.PENDING,
            attempts=0,
            next_attempt_at=now,
            last_error="",
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(OutboxMessage.id)
    )
    return session.execute(statement).scalar() is not None


def enqueue_email(
    session: Session,
    config: EmailConfig,
    recipient: Recipient,
    email: RenderedEmail,
    *,
    key: str,
    kind: str,
    images: Sequence[InlineImage] = (),
    attachments: Sequence[Attachment] = (),
    priority: int = NORMAL,
    now: datetime | None = None,
) -> bool:
    """``enqueue`` a rendered template triplet for a recipient of the register."""
    return enqueue(
        session,
        config,
        key=key,
        kind=kind,
        recipient_email=recipient.email,
        recipient_name=recipient.name,
        recipient_id=recipient.id,
        subject=email.subject,
        text=email.text,
        html=email.html,
        images=images,
        attachments=attachments,
        priority=priority,
        now=now,
    )


def existing_keys(session: Session, keys: Iterable[str]) -> set[str]:
    """Which of these keys are already in the outbox (to skip rendering what exists)."""
    wanted = list(keys)
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        found.update(session.scalars(select(OutboxMessage.key).where(OutboxMessage.key.in_(chunk))))
    return found


@dataclass
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    redelivered: int = 0

    def __str__(self) -> str:
        text = f"{self.sent} sent, {self.retrying} to retry, {self.failed} failed"
        return text + (f", {self.redelivered} possibly sent twice" if self.redelivered else "")


@dataclass(frozen=True)
class _Claimed:
    token: str
    emails: list[Email]
    attempts: dict[int, int]


def deliver(
    engine: Engine, config: EmailConfig, transport: Transport | None = None, *, now: datetime | None = None
) -> DeliveryReport:
    """One pass: send every message due now, batch by batch, then return.

    Messages that fail transiently get their next attempt time and wait for a later pass, so a
    pass never sleeps on a backoff.
    """
    transport = transport or make_transport(config)
    now = now or utcnow()
    report = DeliveryReport()
    while batch := _claim_batch(engine, config, now, report):
        if not _send_batch(engine, config, transport, batch, now, report):
            break  # the server cannot be reached: the rest wait for the next pass
    if report.sent or report.retrying or report.failed:
        log.info("outbox pass: %s", report, extra={"backend": transport.name})
    return report


def _claim_batch(
    engine: Engine, config: EmailConfig, now: datetime, report: DeliveryReport
) -> _Claimed | None:
    due = OutboxMessage.status.in_([OutboxStatus.PENDING, OutboxStatus.SENDING]) & (
        OutboxMessage.next_attempt_at <= now
    )
    with transaction(engine) as session:
        for priority in (URGENT, NORMAL):
            token, ids = claim(
                session,
                OutboxMessage,
                pending=due & (OutboxMessage.priority == priority),
                claimed_by=OutboxMessage.claimed_by,
                claimed_at=OutboxMessage.claimed_at,
                limit=config.batch_size,
                lease=config.lease,
            )
            if ids:
                break
        else:
            return None
        rows = session.execute(
            select(
                OutboxMessage.id,
                OutboxMessage.message_id,
                OutboxMessage.recipient_email,
                OutboxMessage.raw,
                OutboxMessage.status,
                OutboxMessage.attempts,
            )
            .where(OutboxMessage.id.in_(ids))
            .order_by(OutboxMessage.id)
        ).all()
    for row in rows:
        if row.status == OutboxStatus.SENDING:
            report.redelivered += 1
            log.warning(
                "message %s to %s was being sent when its sender stopped; sending it again with the same"
                " Message-ID (it may arrive twice)",
                row.message_id,
                row.recipient_email,
            )
    emails = [
        Email(row.id, row.message_id, config.from_address, row.recipient_email, row.raw) for row in rows
    ]
    return _Claimed(token, emails, {row.id: row.attempts for row in rows})


def _send_batch(
    engine: Engine,
    config: EmailConfig,
    transport: Transport,
    batch: _Claimed,
    now: datetime,
    report: DeliveryReport,
) -> bool:
    """Send a claimed batch and record every outcome; False if the transport could not send at all."""
    settled: set[int] = set()

    def ready() -> Iterator[Email]:
        for email in batch.emails:
            if _update(engine, batch.token, email.id, status=OutboxStatus.SENDING, claimed_at=utcnow()):
                yield email
            else:  # the claim lapsed and another sender took the message over
                settled.add(email.id)

    try:
        for email, error in transport.send(ready()):
            settled.add(email.id)
            _record(engine, config, batch, email, error, now, report)
    except TransportError as error:
        log.error("cannot send email now: %s", error.message, extra={"backend": transport.name})
        for email in batch.emails:
            if email.id not in settled:
                _record(engine, config, batch, email, TransportError(error.message), now, report)
        return False
    return True


def _record(
    engine: Engine,
    config: EmailConfig,
    batch: _Claimed,
    email: Email,
    error: TransportError | None,
    now: datetime,
    report: DeliveryReport,
) -> None:
    if error is None:
        _update(engine, batch.token, email.id, status=OutboxStatus.SENT, sent_at=utcnow(), last_error="")
        report.sent += 1
        log.debug("sent %s to %s", email.message_id, email.recipient)
        return
    attempts = batch.attempts[email.id] + 1
    if error.permanent or attempts >= config.max_attempts:
        reason = error.message if error.permanent else f"gave up after {attempts} attempts: {error.message}"
        _update(
            engine, batch.token, email.id, status=OutboxStatus.FAILED, attempts=attempts, last_error=reason
        )
        report.failed += 1
        log.error("email %s to %s failed for good: %s", email.message_id, email.recipient, reason)
        _tell_operator_of_failure(engine, config, email, reason)
        return
    next_attempt = now + retry_delay(config, attempts)
    _update(
        engine,
        batch.token,
        email.id,
        status=OutboxStatus.PENDING,
        attempts=attempts,
        last_error=error.message,
        next_attempt_at=next_attempt,
    )
    report.retrying += 1
    log.warning(
        "email %s to %s not sent (%s); attempt %d, next at %s",
        email.message_id,
        email.recipient,
        error.message,
        attempts,
        next_attempt.isoformat(timespec="seconds"),
    )


def _tell_operator_of_failure(engine: Engine, config: EmailConfig, email: Email, reason: str) -> None:
    """An undelivered alert must not go unnoticed until someone reads the log or ``vigil status``.
    Never for an email to the operator: it would only queue another email to the same address."""
    if email.recipient == config.operator_address:
        return
    with transaction(engine) as session:
        raise_operator_event(
            session, "email_failed", f"An email to {email.recipient} was not delivered",
            f"Email #{email.id} to {email.recipient} failed for good: {reason}. Once the cause is"
            f" fixed, `vigil alerts retry {email.id}` sends it again.",
        )  # fmt: skip


def retry_delay(config: EmailConfig, attempts: int) -> timedelta:
    """Exponential backoff with jitter (tenacity's waits), from the number of attempts made so far.

    The jitter spreads retries after an outage, so that queued messages do not all come back at once.
    """
    wait = wait_exponential(multiplier=config.retry_initial) + wait_random(0, config.retry_initial)
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.attempt_number = attempts
    return timedelta(seconds=min(wait(state), config.retry_max))


def _update(engine: Engine, token: str, message_id: int, **values: Any) -> bool:
    """Change a claimed message, only while this sender's claim holds; commit at once."""
    if values.get("status") in (OutboxStatus.SENT, OutboxStatus.FAILED, OutboxStatus.PENDING):
        values.update(claimed_by=None, claimed_at=None)
    with transaction(engine) as session:
        result = session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id, OutboxMessage.claimed_by == token)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
    if not result.rowcount:  # type: ignore[attr-defined]
        log.warning(
            "lost the claim on outbox message %d before recording %s", message_id, values.get("status")
        )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def requeue_failed(session: Session, ids: Sequence[int] = (), now: datetime | None = None) -> int:
    """Give permanently failed messages another go (after fixing an address or the mail server)."""
    statement = update(OutboxMessage).where(OutboxMessage.status == OutboxStatus.FAILED)
    if ids:
        statement = statement.where(OutboxMessage.id.in_(list(ids)))
    result = session.execute(
        statement.values(status=OutboxStatus.PENDING, attempts=0, next_attempt_at=now or utcnow())
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def status_section(runtime: Runtime, session: Session) -> tuple[str, list[tuple[str, str]]]:
    """``vigil status``: outbox depth by state, the next retry, and the latest permanent failures."""
    by_status = select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
    counts = {status: count for status, count in session.execute(by_status)}
    rows = [(status.value.capitalize(), str(counts.get(status, 0))) for status in OutboxStatus]
    next_retry = session.scalar(
        select(func.min(OutboxMessage.next_attempt_at)).where(
            OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.attempts > 0
        )
    )
    if next_retry is not None:
        zone = ZoneInfo(runtime.settings.digest.timezone)
        rows.append(("Next retry", sortable_time(next_retry, zone)))
    failures = session.execute(
        select(OutboxMessage.id, OutboxMessage.recipient_email, OutboxMessage.kind, OutboxMessage.last_error)
        .where(OutboxMessage.status == OutboxStatus.FAILED)
        .order_by(OutboxMessage.id.desc())
        .limit(5)
    ).all()
    for failure in failures:
        rows.append(
            (f"Failed #{failure.id}", f"{failure.kind} to {failure.recipient_email}: {failure.last_error}")
        )
    if failures:
        rows.append(("", "retry with `vigil alerts retry`"))
    waiting = session.scalar(select(func.count()).where(OperatorEvent.notified_at.is_(None))) or 0
    if waiting:
        rows.append(("Operator events not emailed", str(waiting)))
    return "Email outbox", rows
