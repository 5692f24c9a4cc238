"""Alerts fixtures: mentions made directly in the database, settings, and a real SMTP server on loopback.

``make.mention(about, labels=...)`` stores a mention, the entities it names and its
classification, as the collector and the classifier would. ``smtp_server`` is an aiosmtpd server
on 127.0.0.1 that records every message it accepts and can be told to refuse some.
"""

from __future__ import annotations

import itertools
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from alerts.config import AlertsConfig, load_config
from alerts.outbox import URGENT, enqueue
from alerts.weeks import Week
from tests.conftest import Tenancy
from vigil.cli import app
from vigil.labels import LABELS
from vigil.models import Classification, Doctor, Mention, MentionEntity, OutboxMessage, Practice
from vigil.runtime import Runtime
from vigil.settings import Settings

# Tuesday 10 November 2026, 09:00 UTC (GMT in London): in ISO week 2026-W46.
NOW = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)

Target = Tenancy | Doctor | Practice


class Factory:
    """Makes mentions as the collector and classifier store them."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._ids = itertools.count(1)

    def mention(
        self,
        *about: Target,
        labels: tuple[str, ...] | list[str] = (),
        text: str = "",
        scores: dict[str, float] | None = None,
        created_at: datetime = NOW - timedelta(minutes=5),
        found_at: datetime | None = None,
        classified_at: datetime | None = None,
        source: str = "x",
        url: str | None = None,
        author: str = "@someone",
        classify: bool = True,
    ) -> Mention:
        number = next(self._ids)
        mention = Mention(
            source=source,
            external_id=f"post-{number}",
            url=url if url is not None else f"https://x.com/someone/status/{number}",
            author=author,
            created_at=created_at,
            collected_at=found_at or created_at,
            text=text or f"Post number {number} about {self._names(about)}",
            entities=[self._entity(target, found_at or created_at) for target in about],
        )
        if classify:
            mention.classification = Classification(
                model_id="test-model",
                model_version="1",
                scores=scores or {label: (0.91 if label in labels else 0.04) for label in LABELS},
                classified_at=classified_at or created_at + timedelta(minutes=1),
                **{label: True for label in labels},
            )
        self.session.add(mention)
        self.session.commit()
        return mention

    def relabel(self, mention: Mention, labels: tuple[str, ...], classified_at: datetime) -> None:
        classification = mention.classification
        assert classification is not None
        self.session.refresh(classification)  # as routing left it
        for label in LABELS:
            setattr(classification, label, label in labels)
        classification.classified_at = classified_at
        classification.routing_pending = True
        self.session.commit()

    @staticmethod
    def _entity(target: Target, linked_at: datetime) -> MentionEntity:
        if isinstance(target, Tenancy):
            target = target.doctors[0]
        if isinstance(target, Doctor):
            return MentionEntity(doctor=target, matched_text=target.full_name, linked_at=linked_at)
        return MentionEntity(practice=target, matched_text=target.name, linked_at=linked_at)

    @staticmethod
    def _names(about: tuple[Target, ...]) -> str:
        names = []
        for target in about:
            if isinstance(target, Tenancy):
                target = target.doctors[0]
            names.append(target.full_name if isinstance(target, Doctor) else target.name)
        return " and ".join(names)


def queue(
    session: Session, config: AlertsConfig, recipients: list[str], kind: str = "alert", priority: int = URGENT
) -> list[str]:
    """Store one simple email per recipient, as any part of Vigil would; return the recipients."""
    for number, recipient in enumerate(recipients):
        enqueue(
            session,
            config.email,
            key=f"{kind}:test:{number}",
            kind=kind,
            recipient_email=recipient,
            subject=f"{kind} {number}",
            text=f"Text of {kind} {number}",
            html=f"<p>HTML of {kind} {number}</p>",
            priority=priority,
            now=NOW,
        )
    session.commit()
    return recipients


@pytest.fixture
def make(session: Session) -> Factory:
    return Factory(session)


@pytest.fixture
def alert_settings(settings: Settings, tmp_path: Path) -> Settings:
    """Settings with email written as files under the test's folder."""
    return settings.with_overrides(email__backend="file", email__outbox_dir=str(tmp_path / "outbox"))


@pytest.fixture
def config(alert_settings: Settings) -> AlertsConfig:
    return load_config(alert_settings)


@pytest.fixture
def runtime(alert_settings: Settings) -> Iterator[Runtime]:
    rt = Runtime(alert_settings)
    yield rt
    rt.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    connection: int

    @property
    def message(self) -> EmailMessage:
        return cast(EmailMessage, message_from_bytes(self.data, policy=policy.default))

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])


@dataclass
class Recorder:
    """An aiosmtpd handler: records accepted messages; refuses recipients or DATA when told to."""

    received: list[Received] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)
    data_replies: list[str] = field(default_factory=list)
    on_rcpt: Callable[[str], None] | None = None
    on_data: Callable[[Received], None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if self.on_rcpt is not None:
            self.on_rcpt(address)
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            if self.data_replies:
                return self.data_replies.pop(0)
            received = Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content, id(session))
            self.received.append(received)
        if self.on_data is not None:
            self.on_data(received)
        return "250 Message accepted for delivery"

    def message_ids(self) -> list[str]:
        return [received.message_id for received in self.received]


class SmtpServer:
    """A real SMTP server on 127.0.0.1 (aiosmtpd), started and stopped at will."""

    def __init__(self, port: int | None = None, **options: Any) -> None:
        self.port = port or free_port()
        self.recorder = Recorder()
        self.options = options
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(self.recorder, hostname="127.0.0.1", port=self.port, **self.options)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def received(self) -> list[Received]:
        return self.recorder.received


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


def smtp_overrides(server: SmtpServer, **more: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "email__backend": "smtp",
        "email__smtp_host": "127.0.0.1",
        "email__smtp_port": server.port,
        "email__smtp_security": "none",
        "email__smtp_timeout_seconds": 5,
        "email__lease_seconds": 30,
    }
    values.update(more)
    return values


@pytest.fixture
def smtp_settings(alert_settings: Settings, smtp_server: SmtpServer) -> Settings:
    return alert_settings.with_overrides(**smtp_overrides(smtp_server))


def assert_unfinished_weeks_refused(command: list[str], session: Session) -> Week:
    """``command --week`` refuses this week and the next with one clear error and queues nothing;
    returns this week (every digest command goes through ``alerts.jobs.chosen_week``)."""
    london = ZoneInfo("Europe/London")
    this_week = Week.containing(datetime.now(UTC), london)
    ends = this_week.end(london).astimezone(london)
    result = CliRunner().invoke(app, [*command, "--week", str(this_week)])
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"error: week {this_week} has not ended yet: it ends at 00:00 on Monday {ends.day} {ends:%B %Y}"
        " (Europe/London), and only a finished week can be digested"
    )
    result = CliRunner().invoke(app, [*command, "--week", str(this_week.next())])
    assert result.exit_code == 1 and f"error: week {this_week.next()} has not ended yet" in result.output
    assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
    return this_week
