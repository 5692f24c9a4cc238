"""End to end: the demo's week through the real pipeline, its emails received by a real SMTP server.

The fake X API serves the bundled week; tweepy, the matcher, the store, the trained classifier,
case detection, routing, rendering and SMTP delivery all run for real. This test needs the
trained model (trained once per machine and cached; see docs/classifier.md), so it is slow.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from rich.progress import Progress
from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.config import load_config
from alerts.weeks import Week
from tests.alerts.conftest import Received, SmtpServer, smtp_overrides
from vigil.demo.run import DemoSummary, run_demo
from vigil.models import Classification, Mention, Recipient, Scope
from vigil.scope import visible_to
from vigil.settings import Settings

pytestmark = pytest.mark.slow

THREAT = "I know where you park your car doc"
FISHPONDS = "manager@x90007.nhs.example"  # Dr Rajesh Rahman's practice
ORG = {"cases@mdo.example", "advice@mdo.example"}
CATEGORIES = {"Possible threat": "threat", "Abuse": "abusive", "Criticism": "critical", "Praise": "praise"}


@pytest.fixture
def demo(settings: Settings, tmp_path: Path) -> tuple[DemoSummary, list[Received], Settings]:
    server = SmtpServer()
    server.start()
    try:
        demo_settings = settings.with_overrides(**smtp_overrides(server), service__port=0)
        summary = run_demo(demo_settings, tmp_path / "demo", Progress(disable=True))
    finally:
        server.stop()
    return summary, server.received, demo_settings


def kind(received: Received) -> str:
    """What an email is, from its Message-ID ("<...alert@host>", "<...digest@host>")."""
    return received.message_id.strip("<>").split("@")[0].rsplit(".", 1)[-1]


def text_of(received: Received) -> str:
    body = received.message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


def test_the_threat_reaches_the_practice_and_the_organisation_and_no_one_else(
    demo: tuple[DemoSummary, list[Received], Settings],
) -> None:
    _, received, _ = demo
    about_threat = [r for r in received if THREAT in text_of(r)]
    alerts = {rcpt for r in about_threat if kind(r) == "alert" for rcpt in r.rcpt_tos}
    assert FISHPONDS in alerts
    assert "cases@mdo.example" in alerts
    everyone = {rcpt for r in about_threat for rcpt in r.rcpt_tos}
    assert everyone <= {FISHPONDS, *ORG}, everyone - {FISHPONDS, *ORG}


def test_each_practice_digest_counts_exactly_the_mentions_it_may_see(
    demo: tuple[DemoSummary, list[Received], Settings], session: Session
) -> None:
    summary, received, settings = demo
    config = load_config(settings)
    week = Week.parse(summary.digest_week)
    start, end = week.start(config.digest.timezone), week.end(config.digest.timezone)
    digests = [r for r in received if kind(r) == "digest"]
    managers = session.scalars(select(Recipient).where(Recipient.scope == Scope.PRACTICE)).all()
    assert {r.rcpt_tos[0] for r in digests} >= {m.email for m in managers}
    for manager in managers:
        (digest,) = [r for r in digests if r.rcpt_tos == [manager.email]]
        shown = dict(re.findall(r"^(Possible threat|Abuse|Criticism|Praise)\s+(\d+)", text_of(digest), re.M))
        rows = session.execute(
            select(Classification)
            .join(Mention, Mention.id == Classification.mention_id)
            .where(visible_to(manager), Mention.collected_at >= start, Mention.collected_at < end)
        ).scalars()
        counted = Counter(label for classification in rows for label in classification.labels)
        assert {CATEGORIES[name]: int(n) for name, n in shown.items()} == {
            label: counted[label] for label in CATEGORIES.values()
        }, manager.email


def test_the_demo_opens_the_planted_cases(demo: tuple[DemoSummary, list[Received], Settings]) -> None:
    summary, _, _ = demo
    reasons = {(reason, who) for _, reason, _, who in summary.cases}
    assert ("threat", "Rajesh Rahman") in reasons
    assert any(reason == "pile_on" and "Helen Ingram" in who for reason, who in reasons)
    assert any(reason == "campaign" and who.count(",") >= 3 for reason, who in reasons)
