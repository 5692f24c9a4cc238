"""Case emails through the outbox to a real SMTP server: org recipients only, once, escaped, atomic."""

from __future__ import annotations

import html
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any, cast

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select
from sqlalchemy.orm import Session

import cases.detect
from alerts.weeks import Week
from cases.jobs import detect, send_due_digest
from cases.workflow import update_case
from classifier.review import correct_labels
from tests.alerts.test_emails import BY_A_PERSON, BY_BOTH, BY_THE_MODEL
from tests.cases.conftest import T0, Post, cases_of, hours
from tests.conftest import Tenancy
from vigil.models import CaseStatus, Mention, OutboxMessage, Recipient, Scope
from vigil.runtime import Runtime
from vigil.settings import Settings

# T0 is Monday 2 November 2026, 09:00 UTC: the digest of week 2026-W45 is due on Monday 9 November
# at 08:00 London time (the default digest.day and digest.time), which is 08:00 UTC in November.
WEEK = Week(2026, 45)
DIGEST_DUE = datetime(2026, 11, 9, 8, 0, tzinfo=UTC)


@dataclass
class Inbox:
    """What a real SMTP server on 127.0.0.1 accepted."""

    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = cast(EmailMessage, message_from_bytes(envelope.content, policy=policy.default))
        with self.lock:
            self.messages.append(message)
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"].addresses[0].addr_spec == address]


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = Inbox(port=port)
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox
    controller.stop()


@pytest.fixture
def rt(settings: Settings, inbox: Inbox) -> Iterator[Runtime]:
    runtime = Runtime(
        settings.with_overrides(
            email__backend="smtp",
            email__smtp_host="127.0.0.1",
            email__smtp_port=inbox.port,
            email__smtp_security="none",
        )
    )
    yield runtime
    runtime.close()


def body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None
    return str(part.get_content())


def test_a_threat_emails_every_org_recipient_once_and_no_practice(
    session: Session, rt: Runtime, inbox: Inbox, post: Post, org: Tenancy, alice: Tenancy, bob: Tenancy
) -> None:
    assert org.recipient is not None and alice.recipient is not None and bob.recipient is not None
    quiet = Recipient(email="quiet@mdo.example", scope=Scope.ORG, tenant=org.tenant, immediate_alerts=False)
    session.add(quiet)
    post(
        alice.doctors[0],
        at=T0,
        author="@angry",
        labels=("threat",),
        text="I know where Dr Amira Hassan parks.",
    )
    detect(rt, now=T0 + hours(0.1))
    detect(rt, now=T0 + hours(0.2))  # a second run finds nothing new to say
    [message] = inbox.messages
    assert message["To"].addresses[0].addr_spec == "cases@mdo.example"
    assert message["List-Unsubscribe"] is None  # not a subscription one tap should seem to end
    assert (
        message["Subject"].strip()
        == "[Vigil] Emerging case #1: Possible threat against Dr Amira Hassan (GMC 1000001, Alice Road Surgery)"
    )
    text = body(message, "plain")
    assert "EMERGING CASE #1: THREAT, CRITICAL" in text
    assert "I know where Dr Amira Hassan parks." in text
    assert "vigil cases update 1 --status triaged --assignee NAME" in text
    assert "call 999" in body(message, "html")


def test_scraped_text_is_escaped_in_the_html_and_readable_in_the_text(
    session: Session, rt: Runtime, inbox: Inbox, post: Post, org: Tenancy, alice: Tenancy
) -> None:
    text = 'You <script>alert("x")</script> & your <b>surgery</b>\u202e will pay'
    post(alice.doctors[0], at=T0, author="<img src=x onerror=alert(1)>", labels=("threat",), text=text)
    detect(rt, now=T0 + hours(0.1))
    [message] = inbox.messages
    html = body(message, "html")
    assert "<script>" not in html and "<img src=x" not in html and "<b>surgery" not in html
    assert (
        'You &lt;script&gt;alert("x")&lt;/script&gt; &amp; your &lt;b&gt;surgery&lt;/b&gt; will pay' in html
    )
    assert "\u202e" not in html and "\u202e" not in body(message, "plain")
    assert 'You <script>alert("x")</script> & your <b>surgery</b> will pay' in body(message, "plain")


@pytest.mark.parametrize(("reviewed", "sentence"), [(0, BY_THE_MODEL), (1, BY_BOTH), (2, BY_A_PERSON)])
def test_a_case_email_says_the_model_can_be_wrong_only_of_labels_the_model_set(
    session: Session,
    rt: Runtime,
    inbox: Inbox,
    post: Post,
    org: Tenancy,
    alice: Tenancy,
    reviewed: int,
    sentence: str,
) -> None:
    threats = [post(alice.doctors[0], at=T0 + hours(i), author=f"@a{i}", labels=("threat",)) for i in (0, 1)]
    correct_labels(session, [threat.id for threat in threats[:reviewed]], ["threat"], by="Priya")
    session.commit()
    detect(rt, now=T0 + hours(1.1))
    [message] = inbox.messages
    for subtype in ("plain", "html"):
        text = html.unescape(body(message, subtype))
        assert f"Please read the posts yourself: {sentence}" in text, text
        assert text.count("Possible threat (reviewed)") == reviewed  # each post says who set its labels


def test_a_severity_rise_sends_one_update(
    session: Session, rt: Runtime, inbox: Inbox, post: Post, org: Tenancy, alice: Tenancy
) -> None:
    for i in range(5):
        post(alice.doctors[0], at=T0 + hours(i / 5), author=f"a{i}")
    detect(rt, now=T0 + hours(1))
    for i in range(5, 12):
        post(alice.doctors[0], at=T0 + hours(1 + i / 20), author=f"a{i}")
    detect(rt, now=T0 + hours(2))
    detect(rt, now=T0 + hours(3))
    subjects = [m["Subject"].strip() for m in inbox.messages]
    assert subjects == [
        "[Vigil] Emerging case #1: Pile-on: 5 accounts within 6 h about Dr Amira Hassan (GMC 1000001, Alice Road Surgery)",
        "[Vigil] Case #1 is now high: Pile-on: 5 accounts within 6 h about Dr Amira Hassan (GMC 1000001, Alice Road Surgery)",
    ]  # the spike in the same posts is folded into the pile-on case: one case, not two
    assert "12 posts" in body(inbox.messages[1], "plain")


def test_a_new_threat_joining_an_open_case_is_emailed_to_the_case_team(
    session: Session, rt: Runtime, inbox: Inbox, post: Post, org: Tenancy, alice: Tenancy
) -> None:
    post(
        alice.doctors[0], at=T0, author="@one", labels=("threat",), text="I know where Dr Amira Hassan parks."
    )
    detect(rt, now=T0 + hours(0.1))
    [case] = cases_of(session)
    update_case(session, case, by="Priya", status=CaseStatus.TRIAGED, assignee="Sam")
    session.commit()
    later = T0 + timedelta(days=3)
    text = "Tomorrow I will be waiting for Dr Amira Hassan outside the surgery."
    post(alice.doctors[0], at=later, author="@two", labels=("threat",), text=text)
    detect(rt, now=later + hours(0.1))
    detect(rt, now=later + hours(0.2))  # once
    _opened, threat = inbox.messages
    assert threat["Subject"].strip() == (
        "[Vigil] New possible threat on case #1:"
        " Possible threat against Dr Amira Hassan (GMC 1000001, Alice Road Surgery)"
    )
    plain = body(threat, "plain")
    assert "NEW POSSIBLE THREAT ON CASE #1 (TRIAGED)" in plain and text in plain
    assert "A post that may be threatening has joined this case" in plain
    assert "call 999" in body(threat, "html")


def test_a_threat_found_late_comes_first_in_its_email_before_newer_evidence(
    session: Session, rt: Runtime, inbox: Inbox, post: Post, org: Tenancy, alice: Tenancy
) -> None:
    post(
        alice.doctors[0], at=T0, author="@one", labels=("threat",), text="I know where Dr Amira Hassan parks."
    )
    for hour in range(1, 10):
        post(alice.doctors[0], at=T0 + hours(hour), author=f"@troll{hour}", labels=("abusive",))
    detect(rt, now=T0 + hours(10))
    late = "Dr Amira Hassan, I was outside your house last night."
    post(alice.doctors[0], at=T0 + hours(0.5), found_at=T0 + hours(30), author="@two", labels=("threat",),
         text=late)  # fmt: skip
    detect(rt, now=T0 + hours(30.1))
    threat = inbox.messages[-1]
    assert "NEW POSSIBLE THREAT" in body(threat, "plain")
    assert late in body(threat, "plain")  # first, though eight newer posts were shown before it


def test_a_failed_pass_leaves_no_case_and_no_email_and_the_mention_pending(
    session: Session,
    rt: Runtime,
    inbox: Inbox,
    post: Post,
    org: Tenancy,
    alice: Tenancy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    post(alice.doctors[0], at=T0, labels=("threat",))

    def crash(*args: object) -> Iterator[object]:
        raise RuntimeError("disk full")

    monkeypatch.setattr(cases.detect, "campaign_findings", crash)  # after the threat case and its email
    with pytest.raises(RuntimeError):
        detect(rt, now=T0 + hours(0.1))
    assert cases_of(session) == [] and inbox.messages == []
    assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
    assert session.scalar(select(Mention.detect_claimed_by)) is None  # given back: the next pass takes it
    monkeypatch.undo()
    session.commit()  # end this session's read: on SQLite it holds the write lock
    detect(rt, now=T0 + hours(0.2))
    assert len(cases_of(session)) == 1 and len(inbox.messages) == 1


# -- the weekly organisation digest ------------------------------------------------------------


def test_the_weekly_digest_lists_cases_members_and_a_trend_chart(
    session: Session, rt: Runtime, inbox: Inbox, post: Post, org: Tenancy, alice: Tenancy, bob: Tenancy
) -> None:
    post(bob.doctors[0], at=T0 - timedelta(days=10), labels=("threat",))  # an older case, still open
    detect(rt, now=T0 - timedelta(days=10) + hours(1))
    post(alice.doctors[0], at=T0, labels=("threat",), text="<b>bold</b> threat")
    post(alice.doctors[0], at=T0 + hours(1), labels=("abusive",), author="x")
    detect(rt, now=T0 + hours(2))
    older, new = cases_of(session)
    update_case(session, new, by="Priya", status=CaseStatus.TRIAGED, assignee="Sam <sam@mdo.example>")
    session.commit()
    inbox.messages.clear()

    assert send_due_digest(rt, now=DIGEST_DUE - timedelta(minutes=1)) is None  # not due yet
    assert send_due_digest(rt, now=DIGEST_DUE + timedelta(minutes=5)) == 1
    assert send_due_digest(rt, now=DIGEST_DUE + timedelta(minutes=10)) == 0  # already sent
    [message] = inbox.messages
    assert message["To"].addresses[0].addr_spec == "cases@mdo.example"
    assert message["List-Unsubscribe"]  # a subscription, as the practices' digests are
    assert (
        message["Subject"].strip() == "[Vigil] Emerging cases, week of 2–8 November 2026: 1 new, 1 still open"
    )
    text = body(message, "plain")
    new_part, open_part = text.split("STILL OPEN")
    assert f"#{new.id} critical, triaged (Sam <sam@mdo.example>): Possible threat against" in new_part
    assert f"#{older.id} critical, new: Possible threat against" in open_part
    assert "- Dr Amira Hassan (GMC 1000001, Alice Road Surgery): 2 (the week before: 0)" in text
    html = body(message, "html")
    assert "Sam &lt;sam@mdo.example&gt;" in html
    assert "Labels a week (a post with two counts twice): " in html  # not to be read as posts
    [chart] = [part for part in message.walk() if part.get_content_type() == "image/png"]
    assert f'src="cid:{chart["Content-ID"].strip().strip("<>")}"' in html


def test_the_digest_goes_to_org_recipients_only(
    session: Session, rt: Runtime, inbox: Inbox, post: Post, org: Tenancy, alice: Tenancy
) -> None:
    session.add(Recipient(email="nodigest@mdo.example", scope=Scope.ORG, tenant=org.tenant, digest=False))
    session.commit()
    post(alice.doctors[0], at=T0, labels=("critical",))
    send_due_digest(rt, week=WEEK, now=DIGEST_DUE)
    assert [m["To"].addresses[0].addr_spec for m in inbox.messages] == ["cases@mdo.example"]


def test_a_quiet_week_follows_the_digest_quiet_week_setting(
    session: Session, rt: Runtime, inbox: Inbox, org: Tenancy
) -> None:
    skipping = Runtime(rt.settings.with_overrides(digest__quiet_week="skip"))
    assert send_due_digest(skipping, week=WEEK, now=DIGEST_DUE) == 0
    skipping.close()
    assert send_due_digest(rt, week=WEEK, now=DIGEST_DUE) == 1
    assert "0 new, 0 still open" in inbox.messages[0]["Subject"]


def test_a_post_with_several_flagged_labels_is_one_flagged_mention(
    session: Session, rt: Runtime, inbox: Inbox, post: Post, org: Tenancy, alice: Tenancy
) -> None:
    every_flag = ("threat", "abusive", "critical")
    post(alice.doctors[0], at=T0 - timedelta(days=7), labels=every_flag)  # the week before
    post(alice.doctors[0], at=T0, labels=every_flag)
    post(alice.doctors[0], at=T0 + hours(1), labels=("praise",))  # not flagged
    assert send_due_digest(rt, week=WEEK, now=DIGEST_DUE) == 1
    [message] = inbox.messages
    text, html = body(message, "plain"), body(message, "html")
    assert "Members had 1 flagged mention (threats, abuse or criticism), against 1 the week before." in text
    assert "Members had 1 flagged mention (threats, abuse or criticism) in the week of" in html
    assert "- Dr Amira Hassan (GMC 1000001, Alice Road Surgery): 1 (the week before: 1)" in text


def test_a_post_found_late_counts_in_the_week_it_was_found(
    session: Session, rt: Runtime, inbox: Inbox, post: Post, org: Tenancy, alice: Tenancy
) -> None:
    post(alice.doctors[0], at=T0 - timedelta(days=7), found_at=T0, labels=("critical",))
    assert send_due_digest(rt, week=WEEK, now=DIGEST_DUE) == 1
    text = body(inbox.messages[0], "plain")
    assert "Members had 1 flagged mention (threats, abuse or criticism), against 0 the week before." in text
    assert "- Dr Amira Hassan (GMC 1000001, Alice Road Surgery): 1 (the week before: 0)" in text
