from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from alerts.config import load_config
from alerts.jobs import send_alerts, send_due_digests
from alerts.outbox import status_section
from tests.alerts.conftest import NOW, Factory, SmtpServer, queue, smtp_overrides
from tests.conftest import Tenancy
from vigil.models import OperatorEvent, OutboxMessage
from vigil.ops import raise_operator_event
from vigil.paths import resource_dir
from vigil.runtime import Runtime
from vigil.settings import Settings, SettingsError

MONDAY_8AM_GMT = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)  # London is on GMT in November
MONDAY_8AM_BST = datetime(2026, 6, 15, 7, 0, tzinfo=UTC)  # and on BST (UTC+1) in June


def digests(session: Session) -> list[str]:
    session.expire_all()
    keys = list(session.scalars(select(OutboxMessage.key).where(OutboxMessage.kind == "digest")))
    session.commit()
    return keys


def test_digests_go_out_on_monday_at_eight_london_time_and_only_once(
    session: Session, runtime: Runtime, alice: Tenancy
) -> None:
    assert send_due_digests(runtime, MONDAY_8AM_GMT - timedelta(minutes=1)) is None
    first = send_due_digests(runtime, MONDAY_8AM_GMT)
    assert first is not None and str(first.week) == "2026-W46" and first.built == 1
    again = send_due_digests(runtime, MONDAY_8AM_GMT + timedelta(minutes=10))
    assert again is not None and (again.built, again.existing) == (0, 1)
    assert send_due_digests(runtime, MONDAY_8AM_GMT + timedelta(days=1)) is None
    assert digests(session) == [f"digest:r{alice.recipient.id}:2026-W46"]  # type: ignore[union-attr]


def test_the_schedule_follows_british_summer_time(session: Session, runtime: Runtime, alice: Tenancy) -> None:
    assert send_due_digests(runtime, MONDAY_8AM_BST - timedelta(minutes=1)) is None
    report = send_due_digests(runtime, MONDAY_8AM_BST)
    assert report is not None and str(report.week) == "2026-W24"


def test_the_schedule_is_a_setting(session: Session, alert_settings: Settings, alice: Tenancy) -> None:
    friday = Runtime(alert_settings.with_overrides(digest__day="friday", digest__time="17:30"))
    try:
        assert send_due_digests(friday, datetime(2026, 11, 20, 17, 29, tzinfo=UTC)) is None
        report = send_due_digests(friday, datetime(2026, 11, 20, 17, 30, tzinfo=UTC))
        assert report is not None and str(report.week) == "2026-W46"
    finally:
        friday.close()


def test_one_pass_routes_and_delivers_alerts_over_smtp_once(
    session: Session,
    alert_settings: Settings,
    smtp_server: SmtpServer,
    make: Factory,
    alice: Tenancy,
    org: Tenancy,
) -> None:
    runtime = Runtime(alert_settings.with_overrides(**smtp_overrides(smtp_server)))
    try:
        make.mention(alice, labels=["threat"], text="I will be waiting for you after surgery")
        result = send_alerts(runtime, NOW)
        assert (result.routing.emails, result.delivery.sent) == (2, 2)
        assert send_alerts(runtime, NOW + timedelta(minutes=1)).delivery.sent == 0
    finally:
        runtime.close()
    assert sorted(r.rcpt_tos[0] for r in smtp_server.received) == sorted(
        [alice.recipient.email, org.recipient.email]
    )  # type: ignore[union-attr]
    message = smtp_server.received[0].message
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "I will be waiting for you after surgery" in text
    assert "threat 91%" in text and "call 999" in text
    assert "https://x.com/someone/status/" in text


def test_email_already_queued_and_the_operators_go_out_even_when_routing_fails(
    session: Session,
    smtp_settings: Settings,
    smtp_server: SmtpServer,
    make: Factory,
    alice: Tenancy,
    tmp_path: Path,
) -> None:
    guidance = tmp_path / "guidance"
    shutil.copytree(resource_dir("config") / "guidance", guidance)
    (guidance / "threat.md").write_text("# Threats\n\nCall {{ advice_phone }}.\n")  # broken before any load
    runtime = Runtime(
        smtp_settings.with_overrides(
            alerts__guidance_dir=str(guidance), email__operator_address="ops@vigil.example"
        )
    )
    try:
        queue(session, load_config(runtime.settings), ["manager@example.org"], kind="case")
        raise_operator_event(session, "job_failing", "Vigil's pipeline job is failing", "send alerts failed")
        make.mention(alice, labels=["threat"], text="I will be waiting for you after surgery")
        with pytest.raises(SettingsError, match="advice_phone"):
            send_alerts(runtime, NOW)
    finally:
        runtime.close()
    assert sorted(r.rcpt_tos for r in smtp_server.received) == [
        ["manager@example.org"],
        ["ops@vigil.example"],
    ]


def test_operator_events_reach_the_operator_once_in_one_email(
    session: Session, alert_settings: Settings, smtp_server: SmtpServer
) -> None:
    raise_operator_event(
        session, "source_failed", "Reddit is failing", "401 Unauthorized <html> from the API"
    )
    raise_operator_event(session, "source_failed", "Bluesky is failing", "createSession rate limited")
    session.commit()
    settings = alert_settings.with_overrides(
        **smtp_overrides(smtp_server, email__operator_address="ops@vigil.example")
    )
    runtime = Runtime(settings)
    try:
        assert send_alerts(runtime, NOW).operator_events == 2
        assert send_alerts(runtime, NOW).operator_events == 0
    finally:
        runtime.close()
    [received] = smtp_server.received
    assert received.rcpt_tos == ["ops@vigil.example"]
    message = received.message
    assert message["Subject"] == "[Vigil] Operator: 2 problems need attention"
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "Reddit is failing" in html and "401 Unauthorized &lt;html&gt; from the API" in html
    session.expire_all()
    assert session.scalar(select(func.count()).where(OperatorEvent.notified_at.is_(None))) == 0


def test_without_an_operator_address_events_are_only_logged(session: Session, runtime: Runtime) -> None:
    raise_operator_event(session, "source_failed", "Reddit is failing", "401")
    session.commit()
    assert send_alerts(runtime, NOW).operator_events == 0
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
    assert ("Operator events not emailed", "1") in status_section(runtime, session)[1]
