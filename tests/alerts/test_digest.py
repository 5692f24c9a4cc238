from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import cast

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from alerts.config import AlertsConfig, load_config
from alerts.digest import DigestReport, build_digests, preview_html, scope_data
from alerts.weeks import Week
from tests.alerts.conftest import Factory
from tests.conftest import Tenancy
from vigil.models import MentionEntity, OutboxMessage, Recipient, Scope
from vigil.settings import Settings

WEEK = Week(2026, 46)  # Monday 9 to Sunday 15 November 2026 (GMT)
THIS_WEEK = datetime(2026, 11, 11, 10, 0, tzinfo=UTC)
LAST_WEEK = datetime(2026, 11, 4, 10, 0, tzinfo=UTC)
SENT_AT = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)


def build(engine: Engine, config: AlertsConfig, **options: object) -> DigestReport:
    return build_digests(engine, config, WEEK, now=SENT_AT, **options)  # type: ignore[arg-type]


def digest_for(session: Session, email: str) -> EmailMessage:
    session.expire_all()
    raw = session.scalars(
        select(OutboxMessage.raw).where(
            OutboxMessage.kind == "digest", OutboxMessage.recipient_email == email
        )
    ).one()
    session.commit()
    return cast(EmailMessage, message_from_bytes(raw, policy=policy.default))


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    return text.replace("\r\n", "\n"), html.replace("\r\n", "\n")


def row(text: str, title: str) -> tuple[int, int, str]:
    match = re.search(rf"^{title}\s+(\d+)\s+(\d+)\s+(\S+)$", text, re.M)
    assert match, f"no {title} row in:\n{text}"
    return int(match.group(1)), int(match.group(2)), match.group(3)


def test_a_digest_counts_each_category_against_the_week_before(
    session: Session, engine: Engine, config: AlertsConfig, make: Factory, alice: Tenancy
) -> None:
    make.mention(alice, labels=["threat", "abusive"], created_at=THIS_WEEK)
    make.mention(alice, labels=["critical"], created_at=THIS_WEEK)
    make.mention(alice, labels=["critical"], created_at=THIS_WEEK + timedelta(days=1))
    make.mention(alice, labels=["praise"], created_at=THIS_WEEK)
    make.mention(alice, created_at=THIS_WEEK)
    make.mention(alice, labels=["critical"], created_at=LAST_WEEK)
    make.mention(alice, labels=["critical"], created_at=LAST_WEEK - timedelta(days=20))
    assert build(engine, config).built == 1
    message = digest_for(session, alice.recipient.email)  # type: ignore[union-attr]
    text, html = parts(message)
    assert message["Subject"] == "[Vigil] Weekly digest, 9–15 November 2026: 5 posts, 1 to look at"
    assert row(text, "Possible threat") == (1, 0, "+1")
    assert row(text, "Abuse") == (1, 0, "+1")
    assert row(text, "Criticism") == (2, 1, "+1")
    assert row(text, "Praise") == (1, 0, "+1")
    assert row(text, "Other mentions") == (1, 0, "+1")
    assert (
        "5 posts about Alice Road Surgery and its doctors found in the week of 9–15 November 2026, against 1 the"
        " week before." in text
    )
    assert "A post can carry more than one label" in text and "A post can carry more than one label" in html
    assert "OTHER MENTIONS (1)" in text  # posts with no label are listed too, the latest first
    assert ">Criticism</td>" in html and ">2</td>" in html


def test_a_post_found_after_its_weeks_digest_was_sent_is_in_the_digest_of_the_week_it_was_found(
    session: Session, engine: Engine, config: AlertsConfig, make: Factory, alice: Tenancy
) -> None:
    assert alice.recipient
    make.mention(alice, labels=["critical"], text="Posted last week, found this week", created_at=LAST_WEEK,
                 found_at=THIS_WEEK)  # fmt: skip
    make.mention(alice, labels=["critical"], text="Posted this week, found next week", created_at=THIS_WEEK,
                 found_at=SENT_AT)  # fmt: skip
    build(engine, config)
    text, _ = parts(digest_for(session, alice.recipient.email))
    assert row(text, "Criticism") == (1, 0, "+1")
    assert "Posted last week, found this week" in text
    assert "found next week" not in text


def test_a_digest_says_how_many_of_its_posts_were_posted_before_the_week_and_since_when(
    session: Session, engine: Engine, config: AlertsConfig, make: Factory, alice: Tenancy, bob: Tenancy
) -> None:
    assert alice.recipient and bob.recipient
    backfilled = datetime(2026, 10, 14, 23, 30, tzinfo=UTC)  # 00:30 on 15 October in London (BST)
    make.mention(alice, labels=["critical"], created_at=backfilled, found_at=THIS_WEEK)
    make.mention(alice, labels=["critical"], created_at=LAST_WEEK, found_at=THIS_WEEK)
    make.mention(alice, labels=["praise"], created_at=THIS_WEEK)
    make.mention(bob, labels=["critical"], created_at=LAST_WEEK, found_at=THIS_WEEK)
    make.mention(bob, labels=["praise"], created_at=THIS_WEEK)
    build(engine, config)
    for part in parts(digest_for(session, alice.recipient.email)):
        assert (
            "2 of these posts were posted before the week began, the earliest on 15 October 2026: Vigil"
            " found them during the week" in part
        )
    for part in parts(digest_for(session, bob.recipient.email)):
        assert "1 of these posts was posted before the week began, on 4 November 2026: Vigil found it" in part


def test_a_digest_of_posts_all_posted_in_its_week_says_nothing_of_earlier_posts(
    session: Session, engine: Engine, config: AlertsConfig, make: Factory, alice: Tenancy
) -> None:
    assert alice.recipient
    make.mention(alice, labels=["critical"], created_at=THIS_WEEK)
    make.mention(alice, labels=["critical"], created_at=LAST_WEEK)  # last week's digest had it
    build(engine, config)
    for part in parts(digest_for(session, alice.recipient.email)):
        assert "posted before the week" not in part


def test_a_post_that_reaches_a_second_practice_later_counts_for_it_in_the_week_it_got_there(
    session: Session,
    engine: Engine,
    config: AlertsConfig,
    make: Factory,
    alice: Tenancy,
    bob: Tenancy,
    org: Tenancy,
) -> None:
    assert alice.recipient and bob.recipient and org.recipient
    long_ago = THIS_WEEK - timedelta(days=365)
    mention = make.mention(alice, labels=["critical"], text="Both surgeries are slow", created_at=long_ago)
    session.add(
        MentionEntity(mention=mention, doctor=bob.doctors[0], matched_text="Bob", linked_at=THIS_WEEK)
    )
    session.commit()
    build(engine, config)
    assert "All quiet" in parts(digest_for(session, alice.recipient.email))[0]
    bob_text, _ = parts(digest_for(session, bob.recipient.email))
    assert row(bob_text, "Criticism") == (1, 0, "+1")
    assert "Both surgeries are slow" in bob_text
    assert not any(scope_data(session, config, org.recipient, WEEK).totals)  # it reached them long ago


def test_posts_not_yet_labelled_are_counted_apart_from_the_other_mentions(
    session: Session, engine: Engine, config: AlertsConfig, make: Factory, alice: Tenancy
) -> None:
    assert alice.recipient
    make.mention(alice, created_at=THIS_WEEK)
    make.mention(alice, created_at=THIS_WEEK, classify=False)  # the classifier has not reached it
    build(engine, config)
    text, html = parts(digest_for(session, alice.recipient.email))
    assert "2 posts about Alice Road Surgery" in text
    assert row(text, "Other mentions") == (1, 0, "+1")
    for part in (text, html):
        assert (
            "1 of these posts was not yet labelled when this digest was built: it is in no category"
            " above, and listed under Not yet labelled" in part
        )


def test_a_recipient_of_bob_sees_nothing_about_alice_or_charlie(
    session: Session,
    engine: Engine,
    config: AlertsConfig,
    make: Factory,
    alice: Tenancy,
    bob: Tenancy,
    charlie: Tenancy,
    org: Tenancy,
) -> None:
    assert alice.practice and bob.recipient and org.recipient
    make.mention(alice, labels=["threat"], text="Secret threat about the Alice doctor", created_at=THIS_WEEK)
    make.mention(alice.practice, labels=["critical"], text="Alice practice is slow", created_at=THIS_WEEK)
    make.mention(charlie, labels=["abusive"], text="Charlie insult", created_at=THIS_WEEK)
    make.mention(bob, labels=["praise"], text="Bob was lovely", created_at=THIS_WEEK)
    build(engine, config)
    for part in parts(digest_for(session, bob.recipient.email)):
        assert "Bob was lovely" in part
        for foreign in ("Alice", "Amira", "Charlie", "Carys", "Secret threat"):
            assert foreign not in part
    text, _ = parts(digest_for(session, bob.recipient.email))
    assert row(text, "Possible threat") == (0, 0, "same")
    org_text, _ = parts(digest_for(session, org.recipient.email))
    for everything in ("Secret threat", "Alice practice is slow", "Charlie insult", "Bob was lovely"):
        assert everything in org_text
    assert "WHAT MEMBERS ARE ADVISED" in org_text and "HOW TO RESPOND" in text


def test_the_top_posts_come_highest_score_first_as_linked_snippets(
    session: Session, engine: Engine, config: AlertsConfig, make: Factory, alice: Tenancy
) -> None:
    for number, score in enumerate([0.55, 0.97, 0.61, 0.88, 0.72, 0.93, 0.50]):
        make.mention(
            alice,
            labels=["critical"],
            scores={"critical": score},
            text=f"Complaint {number} " + "very long words " * (40 if number == 1 else 1),
            url=f"https://www.reddit.com/r/leeds/comments/{number}",
            created_at=THIS_WEEK + timedelta(minutes=number),
        )
    build(engine, config)
    text, html = parts(digest_for(session, alice.recipient.email))  # type: ignore[union-attr]
    shown = [int(n) for n in re.findall(r"Complaint (\d)", text)]
    assert shown == [1, 5, 3, 4, 2]
    assert "And 2 more, in the attached file." in text
    assert "97%" in text and "very long words very long words" in text
    snippet = re.search(r"Complaint 1 (very long words )+", text)
    assert snippet and "…" in text[snippet.end() - 5 : snippet.end() + 20]
    assert 'href="https://www.reddit.com/r/leeds/comments/1"' in html


def test_a_post_is_listed_once_in_its_most_serious_section_and_the_next_shows_others(
    session: Session, engine: Engine, config: AlertsConfig, make: Factory, alice: Tenancy
) -> None:
    make.mention(alice, labels=["threat", "abusive"], text="Threat and insult", created_at=THIS_WEEK)
    for number in range(config.digest.top_items):
        at = THIS_WEEK + timedelta(minutes=number + 1)
        make.mention(
            alice, labels=["abusive"], scores={"abusive": 0.6}, text=f"Insult {number}", created_at=at
        )
    build(engine, config)
    text, html = parts(digest_for(session, alice.recipient.email))  # type: ignore[union-attr]
    assert text.count("Threat and insult") == 1 and html.count("Threat and insult") == 1
    abuse = text.split("ABUSE (6)")[1]
    assert sorted(re.findall(r"Insult (\d)", abuse)) == ["0", "1", "2", "3", "4"]  # five others fill it
    assert "1 of these is listed above, under a more serious label." in abuse
    assert "more, in the attached file" not in abuse  # all six accounted for
    assert "1 of these is listed above, under a more serious label." in html


def test_the_trend_chart_is_an_inline_png_with_alt_text(
    session: Session, engine: Engine, config: AlertsConfig, make: Factory, alice: Tenancy
) -> None:
    make.mention(alice, labels=["critical"], created_at=THIS_WEEK)
    make.mention(alice, created_at=LAST_WEEK)
    make.mention(alice, created_at=LAST_WEEK - timedelta(weeks=3))
    build(engine, config)
    message = digest_for(session, alice.recipient.email)  # type: ignore[union-attr]
    _, html = parts(message)
    image = next(part for part in message.walk() if part.get_content_type() == "image/png")
    cid = image["Content-ID"].strip("<>")
    tag = re.search(rf'<img[^>]*src="cid:{re.escape(cid)}"[^>]*>', html)
    assert tag, html
    alt = re.search(r'alt="([^"]*)"', tag.group(0))
    assert alt and alt.group(1).startswith("Bar chart of mentions per week")
    assert "from 21 September 2026 to 15 November 2026. Posts a week: 0, 0, 0, 1, 0, 0, 1, 1." in alt.group(1)
    assert image.get_content().startswith(b"\x89PNG")


def test_guidance_is_given_for_the_categories_present(
    session: Session, engine: Engine, config: AlertsConfig, make: Factory, alice: Tenancy
) -> None:
    make.mention(alice, labels=["critical"], created_at=THIS_WEEK)
    build(engine, config)
    text, html = parts(digest_for(session, alice.recipient.email))  # type: ignore[union-attr]
    assert "IF A POST CRITICISES YOU OR THE PRACTICE" in text and "SHORT VERSION" in text
    assert "If a post criticises you or the practice" in html and "the short version" in html
    for absent in ("a post may be a threat", "a post is abusive", "a post praises"):
        assert absent not in html and absent.upper() not in text


def test_a_recipients_categories_shape_their_digest(
    session: Session, engine: Engine, config: AlertsConfig, make: Factory, alice: Tenancy
) -> None:
    assert alice.recipient
    alice.recipient.categories = ["threat", "abusive"]
    session.commit()
    make.mention(alice, labels=["praise"], text="Thank you Dr Hassan", created_at=THIS_WEEK)
    build(engine, config)
    text, _ = parts(digest_for(session, alice.recipient.email))
    assert "Praise" not in text and "Thank you Dr Hassan" not in text
    assert "All quiet" in text  # nothing this week in the categories they asked for


@pytest.mark.parametrize(("quiet_week", "built"), [("send", 1), ("skip", 0)])
def test_a_quiet_week_sends_a_short_all_quiet_digest_or_nothing(
    session: Session,
    engine: Engine,
    alert_settings: Settings,
    alice: Tenancy,
    quiet_week: str,
    built: int,
) -> None:
    config = load_config(alert_settings.with_overrides(digest__quiet_week=quiet_week))
    report = build(engine, config)
    assert (report.built, report.quiet_skipped) == (built, 1 - built)
    if built:
        message = digest_for(session, alice.recipient.email)  # type: ignore[union-attr]
        text, _ = parts(message)
        assert message["Subject"] == "[Vigil] Weekly digest, 9–15 November 2026: all quiet"
        assert "All quiet" in text and "HOW TO RESPOND" not in text
        assert len(text) < 700


def test_recipients_who_want_no_digest_get_none(
    session: Session, engine: Engine, config: AlertsConfig, alice: Tenancy, bob: Tenancy
) -> None:
    assert alice.recipient
    alice.recipient.digest = False
    session.commit()
    report = build(engine, config)
    assert (report.recipients, report.built) == (1, 1)


def test_a_digest_is_built_once_per_recipient_and_week_however_often_the_job_runs(
    session: Session, engine: Engine, config: AlertsConfig, alice: Tenancy, bob: Tenancy, charlie: Tenancy
) -> None:
    assert build(engine, config).built == 3
    again = build(engine, config)
    assert (again.built, again.existing) == (0, 3)
    assert build_digests(engine, config, WEEK.next(), now=SENT_AT + timedelta(weeks=1)).built == 3


def test_two_workers_building_the_same_week_at_once_store_each_digest_once(
    session: Session, engine: Engine, config: AlertsConfig, make: Factory, alice: Tenancy, org: Tenancy
) -> None:
    for number in range(30):
        session.add(
            Recipient(email=f"extra{number}@alice.example", scope=alice.recipient.scope, tenant=alice.tenant,  # type: ignore[union-attr]
                      practice=alice.practice)
        )  # fmt: skip
    session.commit()
    make.mention(alice, labels=["critical"], created_at=THIS_WEEK)
    reports: list[DigestReport] = []

    def worker() -> None:
        reports.append(build(engine, config))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(report.built for report in reports) == 32
    count = session.scalar(
        select(func.count()).select_from(OutboxMessage).where(OutboxMessage.kind == "digest")
    )
    assert count == 32


def test_a_dry_run_plans_without_building(
    session: Session, engine: Engine, config: AlertsConfig, make: Factory, alice: Tenancy, bob: Tenancy
) -> None:
    make.mention(alice, labels=["critical"], created_at=THIS_WEEK)
    report = build(engine, config, dry_run=True)
    assert sorted(report.planned) == sorted(
        [(alice.recipient.email, 1, False), (bob.recipient.email, 0, True)]  # type: ignore[union-attr]
    )
    assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 0


def test_a_preview_is_a_standalone_page_with_the_chart_embedded(
    session: Session, config: AlertsConfig, make: Factory, alice: Tenancy
) -> None:
    make.mention(alice, labels=["critical"], created_at=THIS_WEEK)
    html, attachment = preview_html(session, config, alice.recipient, WEEK)  # type: ignore[arg-type]
    assert html.startswith("<!DOCTYPE html>")
    assert 'src="data:image/png;base64,iVBOR' in html and "cid:" not in html
    assert attachment is not None and attachment.filename == "vigil-2026-W46.csv"
    assert "in the attached file, vigil-2026-W46.csv" in html


def test_a_doctor_who_asked_for_threats_only_is_sent_no_other_labelled_posts_in_file_or_counts(
    session: Session, engine: Engine, config: AlertsConfig, make: Factory, alice: Tenancy
) -> None:
    session.add(
        Recipient(email="amira@alice.example", name="Amira", scope=Scope.DOCTOR, tenant=alice.tenant,
                  doctor=alice.doctors[0], categories=["threat"])
    )  # fmt: skip
    session.commit()
    make.mention(alice, labels=["threat"], text="I know where you park", created_at=THIS_WEEK)
    make.mention(alice, labels=["abusive"], text="Useless cow", created_at=THIS_WEEK)
    make.mention(alice, labels=["critical"], text="Worst GP ever", created_at=THIS_WEEK)
    make.mention(alice, text="Flu clinic on Saturday", created_at=THIS_WEEK)
    build(engine, config)
    message = digest_for(session, "amira@alice.example")
    text, html = parts(message)
    assert message["Subject"] == "[Vigil] Weekly digest, 9–15 November 2026: 2 posts, 1 to look at"
    assert "2 posts about Dr Amira Hassan found" in text
    file = next(message.iter_attachments()).get_content()
    for part in (text, html, file):
        assert "I know where you park" in part and "Flu clinic on Saturday" in part
        assert "Useless cow" not in part and "Worst GP ever" not in part
    assert alice.recipient
    assert "Useless cow" in parts(digest_for(session, alice.recipient.email))[0]  # the practice's choice


def test_posts_not_yet_labelled_are_listed_after_threats_and_abuse_for_reading_by_eye(
    session: Session, engine: Engine, config: AlertsConfig, make: Factory, alice: Tenancy
) -> None:
    assert alice.recipient
    make.mention(alice, labels=["critical"], text="Phone lines down again", created_at=THIS_WEEK)
    make.mention(alice, text="I know where Dr Hassan parks", created_at=THIS_WEEK, classify=False)
    make.mention(alice, labels=["abusive"], text="Useless cow", created_at=THIS_WEEK)
    build(engine, config)
    text, html = parts(digest_for(session, alice.recipient.email))
    assert text.index("ABUSE (1)") < text.index("NOT YET LABELLED (1)") < text.index("CRITICISM (1)")
    assert html.index("Useless cow") < html.index("I know where Dr Hassan parks") < html.index("Phone lines")
