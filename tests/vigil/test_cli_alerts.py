from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests.alerts.conftest import Factory, assert_unfinished_weeks_refused
from tests.conftest import Tenancy
from vigil.cli import app
from vigil.models import OutboxMessage, OutboxStatus

runner = CliRunner()
IN_WEEK_46 = datetime(2026, 11, 11, 10, 0, tzinfo=UTC)


@pytest.fixture
def make(session: Session) -> Factory:
    return Factory(session)


def vigil(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


@pytest.fixture
def outbox_dir(env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VIGIL_EMAIL__OUTBOX_DIR", str(tmp_path / "outbox"))
    return tmp_path / "outbox"


def test_help_lists_the_alerts_and_digest_commands() -> None:
    code, output = vigil("--help")
    assert code == 0
    assert re.search(r"│ alerts\s+\S", output) and re.search(r"│ digest\s+\S", output)


def test_alerts_send_routes_and_delivers_in_one_pass(
    outbox_dir: Path, session: Session, make: Factory, alice: Tenancy
) -> None:
    make.mention(alice, labels=["abusive"], created_at=datetime.now(UTC))
    code, output = vigil("alerts", "send")
    assert code == 0, output
    assert "Routed 1 classified mentions: 1 alerted, 1 alert emails queued" in output
    assert "Outbox: 1 sent, 0 to retry, 0 failed." in output
    assert len(list(outbox_dir.glob("*.eml"))) == 1
    assert vigil("alerts", "send")[1].count("0 sent") == 1


def test_digest_send_dry_run_shows_who_would_get_what(
    outbox_dir: Path, session: Session, make: Factory, alice: Tenancy, bob: Tenancy
) -> None:
    make.mention(alice, labels=["critical"], created_at=IN_WEEK_46)
    code, output = vigil("digest", "send", "--week", "2026-W46", "--dry-run")
    assert code == 0, output
    assert re.search(r"manager@a10001\.example\s+│\s+1\s+│ full", output)
    assert re.search(r"manager@b20002\.example\s+│\s+0\s+│ all quiet", output)
    assert not outbox_dir.exists()


def test_digest_send_builds_and_sends_a_week_once(
    outbox_dir: Path, session: Session, make: Factory, alice: Tenancy, bob: Tenancy
) -> None:
    make.mention(alice, labels=["critical"], created_at=IN_WEEK_46)
    code, output = vigil("digest", "send", "--week", "2026-W46")
    assert code == 0, output
    assert "week 2026-W46: 2 digests built" in output and "2 sent" in output
    code, output = vigil("digest", "send", "--week", "2026-W46")
    assert "0 digests built, 2 already built" in output
    assert len(list(outbox_dir.glob("*.eml"))) == 2


def test_digest_send_refuses_a_week_that_has_not_ended_and_builds_nothing(
    outbox_dir: Path, session: Session, make: Factory, alice: Tenancy
) -> None:
    make.mention(alice, labels=["critical"], created_at=datetime.now(UTC))
    assert_unfinished_weeks_refused(["digest", "send"], session)
    assert not outbox_dir.exists()


def test_a_bad_week_is_one_clear_error(env: dict[str, str]) -> None:
    code, output = vigil("digest", "send", "--week", "2026-45")
    assert code == 1
    assert "error: week '2026-45': expected an ISO week such as 2026-W45" in output


def test_digest_preview_writes_the_html_and_its_attached_file(
    env: dict[str, str], session: Session, make: Factory, alice: Tenancy, tmp_path: Path
) -> None:
    make.mention(alice, labels=["praise"], text="Thank you, Dr Hassan", created_at=IN_WEEK_46)
    target = tmp_path / "preview" / "alice.html"
    code, output = vigil(
        "digest",
        "preview",
        "--recipient",
        "Manager@A10001.example",
        "--week",
        "2026-W46",
        "--output",
        str(target),
    )
    assert code == 0, output
    html = target.read_text()
    assert "Thank you, Dr Hassan" in html and "data:image/png;base64," in html
    attached = (tmp_path / "preview" / "vigil-2026-W46.csv").read_text(encoding="utf-8-sig")
    assert "Thank you, Dr Hassan" in attached and "Wrote its attached file" in output
    code, output = vigil("digest", "preview", "--recipient", "nobody@example.org")
    assert code == 1 and "error: no recipient with the email address 'nobody@example.org'" in output


def test_status_shows_the_outbox_and_permanent_failures_which_can_be_retried(
    outbox_dir: Path, session: Session, make: Factory, alice: Tenancy
) -> None:
    make.mention(alice, labels=["abusive"], created_at=datetime.now(UTC))
    vigil("alerts", "send")
    session.execute(
        update(OutboxMessage).values(
            status=OutboxStatus.FAILED, last_error="recipient refused: 550 5.1.1 no such user"
        )
    )
    session.commit()
    code, output = vigil("status")
    assert code == 0
    assert "Email outbox" in output and re.search(r"Failed\s+│ 1", output)
    assert "Failed #1" in output and "manager@a10001.example: recipient" in output and "550 5.1.1" in output
    assert vigil("alerts", "retry")[0] == 1
    code, output = vigil("alerts", "retry", "1", "999")  # a mistyped number: an error, nothing queued
    assert code == 1 and "error: no permanently failed message #999" in output
    session.expire_all()
    assert session.scalars(select(OutboxMessage.status)).one() == OutboxStatus.FAILED
    session.rollback()  # end the read, so that the next command may write (SQLite)
    code, output = vigil("alerts", "retry", "--all")
    assert code == 0 and "1 messages queued again" in output
    session.expire_all()
    assert session.scalars(select(OutboxMessage.status)).one() == OutboxStatus.PENDING
