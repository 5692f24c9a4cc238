from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.config import AlertsConfig
from alerts.outbox import enqueue
from alerts.transports import Email
from alerts.transports.console import ConsoleTransport
from vigil.models import OutboxMessage


def test_it_prints_the_headers_and_the_plain_text(
    session: Session, config: AlertsConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    enqueue(
        session, config.email, key="k", kind="alert", recipient_email="m@a.example", subject="Possible threat",
        text="Read the post yourself.", html="<p>Read the post yourself.</p>",
    )  # fmt: skip
    stored = session.scalars(select(OutboxMessage)).one()
    email = Email(stored.id, stored.message_id, "alerts@vigil.example", stored.recipient_email, stored.raw)
    assert [error for _, error in ConsoleTransport(config.email).send([email])] == [None]
    printed = capsys.readouterr().out
    assert "To: m@a.example" in printed and "Subject: Possible threat" in printed
    assert f"Message-ID: {stored.message_id}" in printed
    assert "Read the post yourself." in printed and "<p>" not in printed
