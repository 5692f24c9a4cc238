from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import cast

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from alerts.config import AlertsConfig, EmailConfig, load_config
from alerts.outbox import (
    NORMAL,
    URGENT,
    InlineImage,
    content_id,
    deliver,
    enqueue,
    requeue_failed,
    retry_delay,
    status_section,
)
from alerts.transports import Email, Transport, TransportError
from tests.alerts.conftest import NOW, SmtpServer, queue
from vigil.models import OperatorEvent, OutboxMessage, OutboxStatus, utcnow
from vigil.runtime import Runtime
from vigil.settings import Settings


class ScriptedTransport(Transport):
    """A transport that records what it sends, fails as scripted, and can be down for a few connects."""

    name = "scripted"

    def __init__(
        self, config: EmailConfig, errors: dict[str, list[TransportError]] | None = None, down: int = 0
    ):
        super().__init__(config)
        self.sent: list[Email] = []
        self.errors = errors or {}
        self.down = down
        self.opened = 0
        self._open = False

    def is_open(self) -> bool:
        return self._open

    def open(self) -> None:
        if self.down:
            self.down -= 1
            raise TransportError("connection refused")
        self.opened += 1
        self._open = True

    def send_one(self, message: Email) -> None:
        if self.errors.get(message.recipient):
            raise self.errors[message.recipient].pop(0)
        self.sent.append(message)

    def close(self) -> None:
        self._open = False


def put(
    session: Session, config: AlertsConfig, count: int, kind: str = "alert", priority: int = URGENT
) -> None:
    queue(session, config, [f"person{n}@{kind}.example" for n in range(count)], kind, priority)


def statuses(session: Session) -> dict[str, OutboxStatus]:
    session.expire_all()
    result = {message.recipient_email: message.status for message in session.scalars(select(OutboxMessage))}
    session.commit()
    return result


def parse(raw: bytes) -> EmailMessage:
    return cast(EmailMessage, message_from_bytes(raw, policy=policy.default))


def test_an_email_is_stored_once_under_its_key(session: Session, config: AlertsConfig) -> None:
    first = enqueue(
        session, config.email, key="digest:r1:2026-W45", kind="digest", recipient_email="a@b.example",
        subject="s", text="t", html="<p>h</p>",
    )  # fmt: skip
    again = enqueue(
        session, config.email, key="digest:r1:2026-W45", kind="digest", recipient_email="a@b.example",
        subject="other", text="t", html="<p>h</p>",
    )  # fmt: skip
    session.commit()
    assert (first, again) == (True, False)
    assert [message.subject for message in session.scalars(select(OutboxMessage))] == ["s"]


def test_a_stored_email_is_multipart_alternative_with_an_inline_image(
    session: Session, alert_settings: Settings
) -> None:
    from alerts.config import load_config

    config = load_config(
        alert_settings.with_overrides(
            email__unsubscribe_url="https://vigil.example/preferences", email__from_name="Vigil alerts"
        )
    )
    cid = content_id(config.email, "trend")
    enqueue(
        session,
        config.email,
        key="k",
        kind="digest",
        recipient_email="manager@a10001.example",
        recipient_name="Practice manager",
        subject="Weekly digest",
        text="Plain words",
        html=f'<p>HTML words</p><img src="cid:{cid}" alt="chart">',
        images=[InlineImage(cid=cid, data=b"\x89PNG fake", filename="trend.png")],
        now=NOW,
    )
    session.commit()
    stored = session.scalars(select(OutboxMessage)).one()
    message = parse(stored.raw)
    assert message["From"] == "Vigil alerts <alerts@vigil.example>"
    assert message["To"] == "Practice manager <manager@a10001.example>"
    assert message["Subject"] == "Weekly digest"
    assert message["Date"] == "Tue, 10 Nov 2026 09:00:00 +0000"
    assert message["Message-ID"] == stored.message_id and stored.message_id.endswith("@vigil.example>")
    assert message["List-Unsubscribe"] == (
        "<https://vigil.example/preferences>, <mailto:alerts@vigil.example?subject=unsubscribe>"
    )
    assert message["Auto-Submitted"] == "auto-generated"
    assert [part.get_content_type() for part in message.walk()] == [
        "multipart/alternative",
        "text/plain",
        "multipart/related",
        "text/html",
        "image/png",
    ]
    image = next(part for part in message.walk() if part.get_content_type() == "image/png")
    assert image["Content-ID"] == f"<{cid}>" and image.get_content_disposition() == "inline"
    assert image.get_content() == b"\x89PNG fake"
    assert "Plain words" in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def test_delivery_sends_each_message_once_however_often_it_runs(
    session: Session, engine: Engine, config: AlertsConfig
) -> None:
    put(session, config, 7)
    transport = ScriptedTransport(config.email)
    assert deliver(engine, config.email, transport, now=NOW).sent == 7
    assert deliver(engine, config.email, transport, now=NOW + timedelta(hours=1)).sent == 0
    assert sorted(email.recipient for email in transport.sent) == sorted(statuses(session))
    assert set(statuses(session).values()) == {OutboxStatus.SENT}


def test_one_connection_carries_a_whole_batch(session: Session, engine: Engine, config: AlertsConfig) -> None:
    put(session, config, 12)
    transport = ScriptedTransport(replace(config.email, batch_size=5))
    deliver(engine, transport.config, transport, now=NOW)
    assert transport.opened == 3


def test_alerts_go_out_before_digests(session: Session, engine: Engine, config: AlertsConfig) -> None:
    put(session, config, 3, kind="digest", priority=NORMAL)
    put(session, config, 2, kind="alert", priority=URGENT)
    transport = ScriptedTransport(replace(config.email, batch_size=2))
    deliver(engine, transport.config, transport, now=NOW)
    assert [email.recipient.split("@")[1] for email in transport.sent] == ["alert.example"] * 2 + [
        "digest.example"
    ] * 3


def test_a_transient_failure_waits_for_its_next_attempt_without_blocking_the_pass(
    session: Session, engine: Engine, config: AlertsConfig
) -> None:
    put(session, config, 3)
    transport = ScriptedTransport(config.email, {"person1@alert.example": [TransportError("451 try later")]})
    report = deliver(engine, config.email, transport, now=NOW)
    assert (report.sent, report.retrying) == (2, 1)
    waiting = session.scalars(select(OutboxMessage).where(OutboxMessage.status == OutboxStatus.PENDING)).one()
    assert waiting.attempts == 1 and waiting.last_error == "451 try later"
    assert NOW + timedelta(seconds=60) <= waiting.next_attempt_at <= NOW + timedelta(seconds=120)
    session.commit()
    assert deliver(engine, config.email, transport, now=NOW + timedelta(seconds=30)).sent == 0
    assert deliver(engine, config.email, transport, now=NOW + timedelta(minutes=5)).sent == 1
    assert len(transport.sent) == 3


def test_backoff_doubles_with_each_attempt_up_to_the_longest_wait(config: AlertsConfig) -> None:
    delays = [retry_delay(config.email, attempt).total_seconds() for attempt in range(1, 10)]
    assert 60 <= delays[0] <= 120 and 120 <= delays[1] <= 180 and 240 <= delays[2] <= 300
    assert delays[-1] == 3600


def test_a_refused_recipient_is_recorded_and_shown_in_status(
    session: Session, engine: Engine, config: AlertsConfig, runtime: Runtime
) -> None:
    put(session, config, 3)
    refusal = TransportError("recipient refused: 550 5.1.1 no such user", permanent=True)
    transport = ScriptedTransport(config.email, {"person2@alert.example": [refusal]})
    report = deliver(engine, config.email, transport, now=NOW)
    assert (report.sent, report.failed) == (2, 1)
    title, rows = status_section(runtime, session)
    assert title == "Email outbox"
    assert ("Sent", "2") in rows and ("Failed", "1") in rows
    assert any(
        "person2@alert.example: recipient refused: 550 5.1.1 no such user" in value for _, value in rows
    )


def test_status_gives_the_next_retry_on_the_organisations_clock(
    session: Session, engine: Engine, config: AlertsConfig, runtime: Runtime
) -> None:
    put(session, config, 1)
    transport = ScriptedTransport(config.email, {"person0@alert.example": [TransportError("421 busy")]})
    summer = datetime(2027, 7, 1, 9, 0, tzinfo=UTC)
    deliver(engine, config.email, transport, now=summer)
    rows = dict(status_section(runtime, session)[1])
    assert re.fullmatch(r"2027-07-01 10:0[12] BST", rows["Next retry"])  # a minute or two later


def test_a_message_failing_past_the_last_attempt_fails_for_good(
    session: Session, engine: Engine, config: AlertsConfig
) -> None:
    put(session, config, 1)
    email_config = replace(config.email, max_attempts=2)
    transport = ScriptedTransport(email_config, {"person0@alert.example": [TransportError("421 busy")] * 2})
    deliver(engine, email_config, transport, now=NOW)
    deliver(engine, email_config, transport, now=NOW + timedelta(hours=2))
    message = session.scalars(select(OutboxMessage)).one()
    assert message.status == OutboxStatus.FAILED
    assert message.last_error == "gave up after 2 attempts: 421 busy"


def test_an_email_that_fails_for_good_tells_the_operator_unless_it_was_to_the_operator(
    session: Session, engine: Engine, smtp_settings: Settings, smtp_server: SmtpServer
) -> None:
    config = load_config(smtp_settings.with_overrides(email__operator_address="ops@vigil.example"))
    refusal = "550 5.1.1 mailbox unavailable"
    smtp_server.recorder.refuse = {"manager@a10001.example": refusal, "ops@vigil.example": refusal}
    queue(session, config, ["manager@a10001.example"], kind="alert")
    queue(session, config, ["ops@vigil.example"], kind="operator")
    assert deliver(engine, config.email, now=NOW).failed == 2
    alert = session.scalars(select(OutboxMessage.id).where(OutboxMessage.kind == "alert")).one()
    events = [(event.kind, event.subject, event.message) for event in session.scalars(select(OperatorEvent))]
    assert events == [
        (
            "email_failed",
            "An email to manager@a10001.example was not delivered",
            f"Email #{alert} to manager@a10001.example failed for good: recipient refused: {refusal}."
            f" Once the cause is fixed, `vigil alerts retry {alert}` sends it again.",
        )
    ]  # and none for the operator's own email: it would only queue another to the same address


def test_failed_messages_can_be_queued_again(session: Session, engine: Engine, config: AlertsConfig) -> None:
    put(session, config, 2)
    refusal = [TransportError("550 no", permanent=True)]
    transport = ScriptedTransport(config.email, {"person0@alert.example": list(refusal)})
    deliver(engine, config.email, transport, now=NOW)
    assert requeue_failed(session, now=NOW) == 1
    session.commit()
    assert deliver(engine, config.email, transport, now=NOW).sent == 1
    assert set(statuses(session).values()) == {OutboxStatus.SENT}


def test_when_the_server_cannot_be_reached_the_pass_stops_and_the_rest_wait(
    session: Session, engine: Engine, config: AlertsConfig
) -> None:
    put(session, config, 5)
    email_config = replace(config.email, batch_size=2)
    transport = ScriptedTransport(email_config, down=5)
    report = deliver(engine, email_config, transport, now=NOW)
    assert (report.sent, report.retrying) == (0, 2)
    attempts = sorted(message.attempts for message in session.scalars(select(OutboxMessage)))
    assert attempts == [0, 0, 0, 1, 1]


def test_a_message_whose_sender_died_while_sending_goes_again_with_the_same_message_id(
    session: Session, engine: Engine, config: AlertsConfig
) -> None:
    put(session, config, 2)
    first = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).first()
    assert first is not None
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == first.id)
        .values(status=OutboxStatus.SENDING, claimed_by="dead:1:x", claimed_at=NOW - timedelta(hours=1))
    )
    session.commit()
    transport = ScriptedTransport(config.email)
    report = deliver(engine, config.email, transport, now=NOW)
    assert (report.sent, report.redelivered) == (2, 1)
    assert transport.sent[0].message_id == first.message_id and transport.sent[0].raw == first.raw


def test_a_live_claim_is_never_taken_over(session: Session, engine: Engine, config: AlertsConfig) -> None:
    put(session, config, 1)
    session.execute(
        update(OutboxMessage).values(status=OutboxStatus.SENDING, claimed_by="alive:1:x", claimed_at=utcnow())
    )
    session.commit()
    assert deliver(engine, config.email, ScriptedTransport(config.email), now=NOW).sent == 0


@pytest.mark.parametrize("bad", ["", "Dr \r\nBcc: victim@example.org"])
def test_names_in_address_headers_cannot_add_headers(
    session: Session, config: AlertsConfig, bad: str
) -> None:
    enqueue(
        session, config.email, key="k", kind="alert", recipient_email="m@a.example", recipient_name=bad,
        subject=f"Subject {bad}", text="t", html="<p>h</p>",
    )  # fmt: skip
    raw = session.scalars(select(OutboxMessage)).one().raw
    headers = raw.split(b"\r\n\r\n", 1)[0]
    assert b"\nBcc" not in headers and b"\rBcc" not in headers
    assert parse(raw)["Bcc"] is None
