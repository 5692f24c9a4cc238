from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from collector.urls import canonical_url
from tests.alerts.conftest import NOW, Factory
from tests.conftest import Tenancy
from vigil import retention, scheduler
from vigil.cli import app
from vigil.errors import VigilError
from vigil.models import (
    Alert,
    AlertMention,
    Case,
    CaseMention,
    CaseReason,
    CaseStatus,
    Classification,
    Mention,
    MentionEntity,
    OutboxMessage,
    OutboxStatus,
    RoutedMention,
    Severity,
)
from vigil.retention import PurgeReport, Retention, check_retention, purge
from vigil.runtime import Runtime
from vigil.settings import Settings, SettingsError

POLICY = Retention(
    mentions=timedelta(days=730), case_evidence=timedelta(days=2190), outbox=timedelta(days=90)
)
OLD = NOW - timedelta(days=731)
RECENT = NOW - timedelta(days=729)


@pytest.fixture
def make(session: Session) -> Factory:
    return Factory(session)


def days_ago(days: int) -> datetime:
    return NOW - timedelta(days=days)


def run_purge(session: Session, **kwargs: object) -> PurgeReport:
    session.commit()  # end the test session's transaction: on SQLite it holds the write lock
    report = purge(session.get_bind(), POLICY, NOW, **kwargs)  # type: ignore[arg-type]
    session.expire_all()
    return report


def count(session: Session, model: type[object]) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def mention_ids(session: Session) -> list[int]:
    return list(session.scalars(select(Mention.id).order_by(Mention.id)))


def routed_and_alerted(session: Session, mention: Mention, recipient_id: int, doctor_id: int) -> Alert:
    alert = Alert(
        recipient_id=recipient_id,
        label="abusive",
        doctor_id=doctor_id,
        window_ends_at=mention.collected_at,
        due_at=mention.collected_at,
        enqueued_at=mention.collected_at,
    )
    session.add_all([alert, RoutedMention(mention_id=mention.id, classified_at=mention.collected_at)])
    session.flush()
    session.add(AlertMention(alert_id=alert.id, mention_id=mention.id, recipient_id=recipient_id))
    session.commit()
    return alert


def evidence_in(session: Session, mention: Mention, status: CaseStatus, closed_at: datetime | None) -> Case:
    case = Case(
        reason=CaseReason.PILE_ON,
        status=status,
        severity=Severity.HIGH,
        title="Pile-on",
        opened_at=mention.created_at,
        closed_at=closed_at,
    )
    case.mentions.append(CaseMention(mention_id=mention.id))
    session.add(case)
    session.commit()
    return case


def email(session: Session, number: int, status: OutboxStatus, created_at: datetime) -> OutboxMessage:
    message = OutboxMessage(
        key=f"test:{number}",
        kind="alert",
        recipient_email="manager@a10001.example",
        message_id=f"<{number}@vigil.example>",
        subject="An alert",
        raw=b"quotes a post",
        status=status,
        created_at=created_at,
    )
    session.add(message)
    session.commit()
    return message


def orphans(session: Session) -> int:
    """Rows that point at a mention no longer stored (none, whatever happened)."""
    stored = select(Mention.id)
    return sum(
        int(session.scalar(select(func.count()).where(column.not_in(stored))) or 0)
        for column in (
            MentionEntity.mention_id,
            Classification.mention_id,
            RoutedMention.mention_id,
            AlertMention.mention_id,
            CaseMention.mention_id,
        )
    )


def test_a_mention_past_retention_goes_with_every_row_linked_to_it_and_its_alert_stays_as_history(
    session: Session, make: Factory, alice: Tenancy
) -> None:
    assert alice.recipient is not None
    old = make.mention(alice, labels=["abusive"], created_at=OLD, found_at=OLD)
    recent = make.mention(alice, labels=["abusive"], created_at=OLD, found_at=RECENT)
    alert = routed_and_alerted(session, old, alice.recipient.id, alice.doctors[0].id)
    routed_and_alerted(session, recent, alice.recipient.id, alice.doctors[0].id)
    evidence_in(session, old, CaseStatus.CLOSED, closed_at=days_ago(2191))  # past the evidence period

    report = run_purge(session)

    assert (report.mentions, report.kept_as_evidence) == (1, 0)
    assert mention_ids(session) == [recent.id]  # collected 729 days ago: kept, however old the post
    assert [count(session, m) for m in (MentionEntity, Classification, RoutedMention, AlertMention)] == [
        1
    ] * 4
    assert count(session, CaseMention) == 0
    assert session.get(Alert, alert.id) is not None  # what was sent, and when: history
    assert session.get(Alert, alert.id).items == []  # type: ignore[union-attr]
    assert count(session, Case) == 1
    assert orphans(session) == 0


def test_case_evidence_is_kept_while_the_case_is_open_and_for_six_years_after_it_closes(
    session: Session, make: Factory, alice: Tenancy
) -> None:
    in_open, reopened, closed_lately, closed_long_ago = (make.mention(alice, found_at=OLD) for _ in range(4))
    evidence_in(session, in_open, CaseStatus.ESCALATED, closed_at=None)
    evidence_in(session, reopened, CaseStatus.TRIAGED, closed_at=days_ago(3000))  # open is open
    evidence_in(session, closed_lately, CaseStatus.CLOSED, closed_at=days_ago(2189))
    evidence_in(session, closed_long_ago, CaseStatus.CLOSED, closed_at=days_ago(2191))

    report = run_purge(session)

    assert mention_ids(session) == [in_open.id, reopened.id, closed_lately.id]
    assert (report.mentions, report.kept_as_evidence) == (1, 3)
    assert count(session, CaseMention) == 3


def test_sent_and_failed_emails_go_after_outbox_days_and_emails_still_to_go_never(session: Session) -> None:
    old, recent = days_ago(91), days_ago(89)
    kept = [
        email(session, 1, OutboxStatus.PENDING, old),
        email(session, 2, OutboxStatus.SENDING, old),
        email(session, 3, OutboxStatus.SENT, recent),
    ]
    email(session, 4, OutboxStatus.SENT, old)
    email(session, 5, OutboxStatus.FAILED, old)

    report = run_purge(session)

    assert report.emails == 2
    assert list(session.scalars(select(OutboxMessage.id).order_by(OutboxMessage.id))) == [m.id for m in kept]


def written_days_ago(folder: Path, name: str, days: float, now: datetime = NOW) -> Path:
    """An .eml file as the ``file`` backend leaves it, last modified ``days`` before ``now``."""
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_bytes(b"quotes a post")
    stamp = (now - timedelta(days=days)).timestamp()
    os.utime(path, (stamp, stamp))
    return path


def test_the_file_backends_eml_files_go_after_outbox_days_and_the_report_counts_them(
    session: Session, tmp_path: Path
) -> None:
    folder = tmp_path / "outbox"
    written_days_ago(folder, "1.2.3.alert@vigil.example.eml", 91)
    written_days_ago(folder, "4.5.6.digest@vigil.example.eml", 90.5)
    recent = written_days_ago(folder, "7.8.9.alert@vigil.example.eml", 89)
    email(session, 1, OutboxStatus.SENT, days_ago(91))

    report = run_purge(session, outbox_dir=folder)

    assert (report.emails, report.email_files) == (1, 2)
    assert list(folder.iterdir()) == [recent]
    assert "1 sent emails and 2 .eml files deleted" in str(report)


def test_an_outbox_folder_that_cannot_be_read_is_a_clear_error(session: Session, tmp_path: Path) -> None:
    not_a_folder = tmp_path / "outbox"
    not_a_folder.write_text("")
    expected = f"cannot delete old .eml files in {not_a_folder} (email.outbox_dir): Not a directory"
    with pytest.raises(VigilError, match=re.escape(expected)):
        run_purge(session, outbox_dir=not_a_folder)


def test_the_purge_works_in_batches_and_running_it_again_does_nothing(
    session: Session, make: Factory, alice: Tenancy
) -> None:
    for _ in range(5):
        make.mention(alice, found_at=OLD)
    for number in range(3):
        email(session, number, OutboxStatus.SENT, days_ago(100))

    first = run_purge(session, batch_size=2)
    again = run_purge(session, batch_size=2)

    assert (first.mentions, first.emails, first.batches) == (5, 3, 3 + 2)
    assert (again.mentions, again.emails, again.batches) == (0, 0, 0)
    assert count(session, Mention) == count(session, OutboxMessage) == 0


def test_a_crash_after_the_first_batch_leaves_a_consistent_store_and_the_next_run_finishes(
    session: Session, make: Factory, alice: Tenancy, bob: Tenancy, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(5):
        make.mention(alice, bob, labels=["critical"], found_at=OLD)
    kept = make.mention(alice, found_at=RECENT)
    delete_mentions = retention.delete_mentions
    calls = 0

    def crash_in_the_second_batch(session: Session, ids: list[int]) -> int:
        nonlocal calls
        calls += 1
        deleted = delete_mentions(session, ids)
        if calls == 2:
            raise RuntimeError("power cut")
        return deleted

    monkeypatch.setattr(retention, "delete_mentions", crash_in_the_second_batch)
    with pytest.raises(RuntimeError, match="power cut"):
        run_purge(session, batch_size=2)
    session.expire_all()
    assert count(session, Mention) == 6 - 2  # the first batch, and nothing of the second
    assert orphans(session) == 0
    assert count(session, MentionEntity) == 2 * 3 + 1

    monkeypatch.setattr(retention, "delete_mentions", delete_mentions)
    assert run_purge(session, batch_size=2).mentions == 3
    assert mention_ids(session) == [kept.id]
    assert orphans(session) == 0


def test_a_copy_that_stays_takes_the_address_of_the_post_deleted_before_it(
    session: Session, make: Factory, alice: Tenancy, bob: Tenancy, charlie: Tenancy
) -> None:
    address = "https://news.example/article-1"
    first = make.mention(alice, url=address, source="rss", found_at=OLD)
    first.canonical_url = canonical_url(address)
    copies = [make.mention(who, url=address, source="rss", found_at=RECENT) for who in (bob, charlie)]
    for copy in copies:
        copy.copy_of = first.id
    session.commit()
    first_id, copy_ids = first.id, [copy.id for copy in copies]

    run_purge(session)

    heir, other = (session.get(Mention, copy_id) for copy_id in copy_ids)
    assert heir is not None and other is not None
    assert (heir.canonical_url, heir.copy_of) == (canonical_url(address), None)
    assert (other.canonical_url, other.copy_of) == (None, heir.id)
    assert session.get(Mention, first_id) is None


def test_a_retention_that_would_empty_the_digests_trend_or_blind_case_detection_is_refused(
    settings: Settings,
) -> None:
    with pytest.raises(
        VigilError, match=r"retention.mentions_days is 30, but digest.trend_weeks looks back 64"
    ):
        check_retention(settings.with_overrides(retention__mentions_days=30))
    with pytest.raises(VigilError, match=r"cases.spike_history_days looks back 121"):
        check_retention(settings.with_overrides(retention__mentions_days=100, cases__spike_history_days=120))
    check_retention(settings.with_overrides(retention__mentions_days=64))
    for name in ("mentions_days", "case_evidence_days", "outbox_days"):  # 0 never means "delete all"
        with pytest.raises(SettingsError, match="from 1 to 36500"):
            settings.with_overrides(**{f"retention__{name}": 0})


@pytest.mark.usefixtures("env")
def test_vigil_run_will_not_start_with_such_a_retention(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_RETENTION__MENTIONS_DAYS", "30")
    monkeypatch.setattr(scheduler, "run", lambda runtime: pytest.fail("vigil run started"))
    result = CliRunner().invoke(app, ["run"])
    assert result.exit_code == 1
    assert result.output.startswith("error: retention.mentions_days is 30, but digest.trend_weeks")


def test_the_defaults_keep_posts_two_years_evidence_six_and_emails_ninety_days(settings: Settings) -> None:
    assert Retention.from_settings(settings) == POLICY


@pytest.fixture
def runtime(settings: Settings, tmp_path: Path) -> Iterator[Runtime]:
    runtime = Runtime(settings.with_overrides(email__outbox_dir=str(tmp_path / "outbox")))
    yield runtime
    runtime.close()


def test_the_daily_job_purges_with_the_runtimes_settings(
    runtime: Runtime, session: Session, make: Factory, alice: Tenancy, tmp_path: Path
) -> None:
    now = datetime.now(NOW.tzinfo)
    make.mention(alice, found_at=now - timedelta(days=800))
    session.commit()
    written_days_ago(tmp_path / "outbox", "1.2.3.alert@vigil.example.eml", 91, now)
    recent = written_days_ago(tmp_path / "outbox", "4.5.6.alert@vigil.example.eml", 89, now)
    assert [spec.id for spec in retention.retention_jobs(runtime.settings)] == ["retention"]
    with scheduler.jobs_runtime(runtime):
        retention.retention_job()
    assert count(session, Mention) == 0
    assert list((tmp_path / "outbox").iterdir()) == [recent]
