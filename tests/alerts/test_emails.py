from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import cast

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from alerts.config import AlertsConfig, load_config
from alerts.jobs import route_new_mentions
from classifier.review import correct_labels
from tests.alerts.conftest import NOW, Factory
from tests.conftest import Tenancy
from vigil.models import OutboxMessage
from vigil.settings import Settings

EVERY_LABEL_AT_ONCE = (
    '{"threat": ["entity"], "abusive": ["entity"], "critical": ["entity"], "praise": ["entity"]}'
)
NAMING = "naming Dr Amira Hassan (Alice Road Surgery)"


@pytest.fixture
def config(alert_settings: Settings) -> AlertsConfig:
    """Every label emailed at once to the practice, as a practice that wants praise too would set it."""
    return load_config(
        alert_settings.with_overrides(alerts__immediate=EVERY_LABEL_AT_ONCE, alerts__group_labels="[]")
    )


def alert_emails(session: Session, engine: Engine, config: AlertsConfig) -> list[EmailMessage]:
    route_new_mentions(engine, config, NOW)
    session.expire_all()
    query = select(OutboxMessage.raw).where(OutboxMessage.kind == "alert").order_by(OutboxMessage.id)
    raws = list(session.scalars(query))
    session.commit()  # end the read: on SQLite every transaction holds the write lock
    return [cast(EmailMessage, message_from_bytes(raw, policy=policy.default)) for raw in raws]


def body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None
    return str(part.get_content())


@pytest.mark.parametrize(
    ("label", "phrase"),
    [
        ("threat", "may be threatening"),
        ("abusive", "may be abusive"),
        ("critical", "may be critical of them"),
        ("praise", "may be praising them"),
    ],
)
def test_each_label_reads_as_a_sentence_in_the_alert(
    session: Session,
    engine: Engine,
    config: AlertsConfig,
    make: Factory,
    alice: Tenancy,
    label: str,
    phrase: str,
) -> None:
    make.mention(alice, labels=[label])
    [message] = alert_emails(session, engine, config)
    sentence = f"Vigil found a public post {NAMING} that {phrase}."
    assert sentence in body(message, "plain") and sentence in body(message, "html")
    assert f"1 public post {NAMING} {phrase}. What to do is below." in body(message, "html")


@pytest.mark.parametrize(
    ("label", "phrase"),
    [("critical", "may be critical of them"), ("praise", "may be praising them")],
)
def test_the_words_for_several_posts_agree_with_them_too(
    session: Session,
    engine: Engine,
    alert_settings: Settings,
    make: Factory,
    alice: Tenancy,
    label: str,
    phrase: str,
) -> None:
    grouped = load_config(
        alert_settings.with_overrides(
            alerts__immediate=EVERY_LABEL_AT_ONCE, alerts__group_labels=f'["{label}"]'
        )
    )
    for _ in range(3):
        make.mention(alice, labels=[label])
    [message] = alert_emails(session, engine, grouped)
    assert f"Vigil found 3 public posts {NAMING} that {phrase}." in body(message, "plain")
    assert f"3 public posts {NAMING} {phrase}. What to do is below." in body(message, "html")


BY_THE_MODEL = "labels come from a computer model and can be wrong."
BY_A_PERSON = "labels were set by a person (the case team) on review."
BY_BOTH = (
    'labels marked "(reviewed)" were set by a person (the case team);'
    " the others come from a computer model and can be wrong."
)


@pytest.mark.parametrize(("reviewed", "sentence"), [(0, BY_THE_MODEL), (1, BY_BOTH), (2, BY_A_PERSON)])
def test_an_alert_says_the_model_can_be_wrong_only_of_labels_the_model_set(
    session: Session,
    engine: Engine,
    alert_settings: Settings,
    make: Factory,
    alice: Tenancy,
    reviewed: int,
    sentence: str,
) -> None:
    grouped = load_config(
        alert_settings.with_overrides(
            alerts__immediate=EVERY_LABEL_AT_ONCE, alerts__group_labels='["abusive"]'
        )
    )
    ids = [make.mention(alice, labels=["abusive"]).id for _ in range(2)]
    correct_labels(session, ids[:reviewed], ["abusive"], by="Priya")
    session.commit()
    [message] = alert_emails(session, engine, grouped)
    for subtype in ("plain", "html"):
        text = html.unescape(body(message, subtype))
        assert f"Please read them yourself: {sentence}" in text, text
        assert text.count("Abuse (reviewed)") == reviewed  # each post says who set its labels


def test_a_post_with_several_labels_is_one_alert_in_the_words_of_the_most_serious(
    session: Session, engine: Engine, config: AlertsConfig, make: Factory, alice: Tenancy
) -> None:
    make.mention(alice, labels=["critical", "praise"])
    make.mention(alice, labels=["abusive", "critical"])
    critical, abusive = alert_emails(session, engine, config)
    assert f"Vigil found a public post {NAMING} that may be critical of them." in body(critical, "plain")
    assert f"Vigil found a public post {NAMING} that may be abusive." in body(abusive, "plain")


def test_the_organisation_reads_what_the_member_is_advised_rather_than_being_told_to_call_itself(
    session: Session, engine: Engine, alert_settings: Settings, make: Factory, alice: Tenancy, org: Tenancy
) -> None:
    make.mention(alice, labels=["threat"], text="I know where you park")
    practice, organisation = alert_emails(session, engine, load_config(alert_settings))
    addresses = [message["To"].addresses[0].addr_spec for message in (practice, organisation)]
    assert addresses == [alice.recipient.email, org.recipient.email]  # type: ignore[union-attr]
    for subtype in ("plain", "html"):
        to_practice, to_organisation = body(practice, subtype), body(organisation, subtype)
        assert (
            "what to do now" in to_practice.lower()
            and "what the member is advised" not in to_practice.lower()
        )
        assert "what the member is advised" in to_organisation.lower()
        assert "The member is advised:" in to_organisation and "The member is advised:" not in to_practice


def test_alerts_about_one_doctor_have_subjects_of_their_own_so_mail_clients_do_not_fold_them_together(
    session: Session, engine: Engine, config: AlertsConfig, make: Factory, alice: Tenancy
) -> None:
    make.mention(alice, labels=["threat"], created_at=datetime(2026, 11, 16, 9, 5, tzinfo=UTC))
    make.mention(alice, labels=["threat"], created_at=datetime(2026, 11, 16, 9, 40, tzinfo=UTC))
    subjects = [str(message["Subject"]) for message in alert_emails(session, engine, config)]
    assert subjects == [
        f"[Vigil] Possible threat: a post {NAMING} on X, Mon 16 Nov 2026, 09:05 GMT",
        f"[Vigil] Possible threat: a post {NAMING} on X, Mon 16 Nov 2026, 09:40 GMT",
    ]


def test_a_threat_alert_offers_no_reply_even_when_the_post_also_criticises(
    session: Session, engine: Engine, alert_settings: Settings, make: Factory, alice: Tenancy
) -> None:
    make.mention(alice, labels=["threat", "critical"], text="Worst GP in Leeds. Watch your back")
    [message] = alert_emails(session, engine, load_config(alert_settings))
    for subtype in ("plain", "html"):
        part = body(message, subtype)
        assert "Do not reply and do not contact the author" in part
        assert "If you reply" not in part and "sorry to hear about your experience" not in part


def test_an_alert_names_labels_as_people_read_them_and_its_phone_numbers_can_be_tapped(
    session: Session, engine: Engine, alert_settings: Settings, make: Factory, alice: Tenancy
) -> None:
    make.mention(
        alice, labels=["threat"], scores={"threat": 0.62, "abusive": 0.1}, text="I know where you park"
    )
    [message] = alert_emails(session, engine, load_config(alert_settings))
    assert "Labels: Possible threat 62%" in body(message, "plain")
    html = body(message, "html")
    assert "Possible threat 62%</span>" in html
    for number in ("999", "101"):
        assert re.search(rf'<a href="tel:{number}"[^>]*>{number}</a>', html), number
    assert "To report it: On the post, open the ... menu and choose Report." in html  # as in the text


def test_a_safety_alert_carries_no_unsubscribe_header_that_one_tap_could_act_on(
    session: Session, engine: Engine, alert_settings: Settings, make: Factory, alice: Tenancy
) -> None:
    make.mention(alice, labels=["threat"])
    [message] = alert_emails(session, engine, load_config(alert_settings))
    assert message["List-Unsubscribe"] is None


def test_a_post_found_long_after_it_was_posted_says_when_it_was_found(
    session: Session, engine: Engine, alert_settings: Settings, make: Factory, alice: Tenancy
) -> None:
    posted = datetime(2026, 10, 29, 20, 0, tzinfo=UTC)
    make.mention(
        alice, labels=["threat"], created_at=posted, found_at=datetime(2026, 11, 10, 8, 55, tzinfo=UTC)
    )
    make.mention(alice, labels=["threat"], created_at=datetime(2026, 11, 10, 8, 30, tzinfo=UTC))
    late, prompt = alert_emails(session, engine, load_config(alert_settings))
    plain = body(late, "plain").replace("\r\n", "\n")
    assert "Thu 29 Oct 2026, 20:00 GMT (found Tue 10 Nov 2026, 08:55 GMT)\nNames: Dr Amira" in plain
    assert "Thu 29 Oct 2026, 20:00 GMT (found Tue 10 Nov 2026, 08:55 GMT)</p>" in body(late, "html")
    for subtype in ("plain", "html"):
        assert "(found" not in body(prompt, subtype)  # found within the hour: when it was posted is enough
