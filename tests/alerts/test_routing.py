from __future__ import annotations

import threading
from datetime import datetime, timedelta
from email import message_from_bytes, policy

import pytest
from sqlalchemy import Engine, event, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from alerts.config import AlertsConfig, load_config
from alerts.jobs import route_new_mentions
from alerts.routing import RoutingReport, route_batch
from classifier.review import correct_labels
from collector.matching import EntityMatch
from collector.post import Post
from collector.store import store_matched
from collector.urls import canonical_url
from tests.alerts.conftest import NOW, Factory
from tests.conftest import Tenancy, add_colleague
from vigil.claims import lock_routing
from vigil.db import transaction
from vigil.models import (
    Alert,
    AlertMention,
    Classification,
    Doctor,
    Mention,
    OutboxMessage,
    Recipient,
    Scope,
)
from vigil.models.base import utcnow
from vigil.settings import Settings


def route(engine: Engine, config: AlertsConfig, now: datetime = NOW) -> RoutingReport:
    return route_new_mentions(engine, config, now)


def alerts_sent(session: Session) -> list[OutboxMessage]:
    session.expire_all()
    messages = list(
        session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "alert").order_by(OutboxMessage.id))
    )
    session.commit()  # end the read: on SQLite every transaction holds the write lock
    return messages


def alert_recipients(session: Session) -> list[str]:
    return sorted(message.recipient_email for message in alerts_sent(session))


def html_of(message: OutboxMessage) -> str:
    parsed = message_from_bytes(message.raw, policy=policy.default)
    return parsed.get_body(("html",)).get_content()  # type: ignore[union-attr]


def test_a_threat_alerts_the_practice_and_the_defence_organisation_at_once(
    session: Session,
    engine: Engine,
    config: AlertsConfig,
    make: Factory,
    alice: Tenancy,
    bob: Tenancy,
    org: Tenancy,
) -> None:
    make.mention(alice, labels=["threat"])
    report = route(engine, config)
    assert report.routed == 1 and report.emails == 2
    assert alert_recipients(session) == sorted([alice.recipient.email, org.recipient.email])  # type: ignore[union-attr]


def test_abuse_alerts_only_the_entitys_own_recipients(
    session: Session, engine: Engine, config: AlertsConfig, make: Factory, alice: Tenancy, org: Tenancy
) -> None:
    make.mention(alice, labels=["abusive"])
    route(engine, config)
    assert alert_recipients(session) == [alice.recipient.email]  # type: ignore[union-attr]


@pytest.mark.parametrize("labels", [("critical",), ("praise",), ()])
def test_criticism_praise_and_the_rest_wait_for_the_digest(
    session: Session,
    engine: Engine,
    config: AlertsConfig,
    make: Factory,
    alice: Tenancy,
    org: Tenancy,
    labels: tuple[str, ...],
) -> None:
    make.mention(alice, labels=labels)
    assert route(engine, config).routed == 1
    assert alerts_sent(session) == []


def test_a_recipient_of_bob_never_hears_about_alice_or_charlie(
    session: Session,
    engine: Engine,
    config: AlertsConfig,
    make: Factory,
    alice: Tenancy,
    bob: Tenancy,
    charlie: Tenancy,
    org: Tenancy,
) -> None:
    assert alice.practice and bob.recipient and charlie.recipient
    make.mention(alice, labels=["threat", "abusive"])
    make.mention(alice.practice, labels=["abusive"])
    make.mention(charlie, labels=["threat"])
    route(engine, config)
    recipients = alert_recipients(session)
    assert bob.recipient.email not in recipients
    assert recipients.count(charlie.recipient.email) == 1
    for message in alerts_sent(session):
        if message.recipient_email == charlie.recipient.email:
            assert "Alice" not in html_of(message) and "Amira" not in html_of(message)


def test_a_post_naming_two_practices_tells_each_only_about_its_own(
    session: Session, engine: Engine, config: AlertsConfig, make: Factory, alice: Tenancy, bob: Tenancy
) -> None:
    make.mention(alice, bob, labels=["abusive"], text="Both of these GPs are a disgrace")
    route(engine, config)
    by_recipient = {message.recipient_email: html_of(message) for message in alerts_sent(session)}
    assert alice.recipient and bob.recipient
    assert set(by_recipient) == {alice.recipient.email, bob.recipient.email}
    assert "Dr Amira Hassan" in by_recipient[alice.recipient.email]
    assert "Benedict Osei" not in by_recipient[alice.recipient.email]
    assert "Dr Benedict Osei" in by_recipient[bob.recipient.email]
    assert "Amira Hassan" not in by_recipient[bob.recipient.email]


def test_a_doctor_scoped_recipient_hears_about_that_doctor_only(
    session: Session, engine: Engine, config: AlertsConfig, make: Factory, alice: Tenancy
) -> None:
    assert alice.practice
    colleague = alice.doctors[0].__class__(
        gmc_number="1000002", full_name="Ada Lovelace", practice=alice.practice, aliases=[], handles=[]
    )
    doctor = Recipient(
        email="amira@alice.example", scope=Scope.DOCTOR, tenant=alice.tenant, doctor=alice.doctors[0]
    )
    session.add_all([colleague, doctor])
    session.commit()
    make.mention(colleague, labels=["abusive"])
    make.mention(alice, labels=["abusive"])
    route(engine, config)
    assert alert_recipients(session).count("amira@alice.example") == 1
    assert alert_recipients(session).count(alice.recipient.email) == 2  # type: ignore[union-attr]


def test_recipients_choose_immediate_alerts_and_categories(
    session: Session, engine: Engine, config: AlertsConfig, make: Factory, alice: Tenancy, org: Tenancy
) -> None:
    assert alice.recipient and org.recipient
    alice.recipient.categories = ["threat"]
    org.recipient.immediate_alerts = False
    session.commit()
    make.mention(alice, labels=["abusive"])
    make.mention(alice, labels=["threat"])
    route(engine, config)
    assert alert_recipients(session) == [alice.recipient.email]
    assert "Possible threat" in alerts_sent(session)[0].subject


def test_several_abusive_posts_found_together_are_one_alert(
    session: Session, engine: Engine, config: AlertsConfig, make: Factory, alice: Tenancy
) -> None:
    for _ in range(4):
        make.mention(alice, labels=["abusive"])
    route(engine, config)
    [message] = alerts_sent(session)
    assert message.subject == "[Vigil] Abuse: 4 posts naming Dr Amira Hassan (Alice Road Surgery)"


def test_abuse_within_the_window_is_one_follow_up_sent_when_the_window_closes(
    session: Session, engine: Engine, config: AlertsConfig, make: Factory, alice: Tenancy
) -> None:
    make.mention(alice, labels=["abusive"], created_at=NOW - timedelta(minutes=1))
    route(engine, config, NOW)
    for minute in (2, 5, 9):
        make.mention(alice, labels=["abusive"], created_at=NOW + timedelta(minutes=minute - 1))
        route(engine, config, NOW + timedelta(minutes=minute))
    assert len(alerts_sent(session)) == 1  # the storm is held back
    route(engine, config, NOW + timedelta(minutes=15))
    _, follow_up = alerts_sent(session)
    assert follow_up.subject == (  # a time of its own: mail clients do not fold follow-ups together
        "[Vigil] Abuse: 3 more posts naming Dr Amira Hassan (Alice Road Surgery) since Tue 10 Nov 2026, 09:00 GMT"
    )
    make.mention(alice, labels=["abusive"], created_at=NOW + timedelta(minutes=20))
    route(engine, config, NOW + timedelta(minutes=21))
    assert len(alerts_sent(session)) == 3  # a new window opens with an immediate alert
    assert "a post naming" in alerts_sent(session)[-1].subject


def test_a_post_corrected_while_its_follow_up_window_is_open_is_left_out_of_it(
    session: Session, engine: Engine, config: AlertsConfig, make: Factory, alice: Tenancy
) -> None:
    make.mention(alice, labels=["abusive"], created_at=NOW - timedelta(minutes=1))
    route(engine, config, NOW)
    joke = make.mention(alice, labels=["abusive"], text="Banter", created_at=NOW + timedelta(minutes=1)).id
    make.mention(alice, labels=["abusive"], text="Insult", created_at=NOW + timedelta(minutes=2))
    route(engine, config, NOW + timedelta(minutes=3))
    correct_labels(session, [joke], ["praise"], by="Priya")
    session.commit()

    route(engine, config, NOW + timedelta(minutes=15))

    _, follow_up = alerts_sent(session)
    assert "1 more post naming" in follow_up.subject
    assert "Insult" in html_of(follow_up) and "Banter" not in html_of(follow_up)


def test_a_follow_up_whose_every_post_was_corrected_is_not_sent(
    session: Session, engine: Engine, config: AlertsConfig, make: Factory, alice: Tenancy
) -> None:
    make.mention(alice, labels=["abusive"], created_at=NOW - timedelta(minutes=1))
    route(engine, config, NOW)
    joke = make.mention(alice, labels=["abusive"], created_at=NOW + timedelta(minutes=1)).id
    route(engine, config, NOW + timedelta(minutes=3))
    correct_labels(session, [joke], [], by="Priya")
    session.commit()

    route(engine, config, NOW + timedelta(minutes=15))

    assert len(alerts_sent(session)) == 1


def test_each_threat_is_alerted_on_its_own(
    session: Session, engine: Engine, config: AlertsConfig, make: Factory, alice: Tenancy
) -> None:
    make.mention(alice, labels=["threat"])
    make.mention(alice, labels=["threat"])
    route(engine, config)
    assert len(alerts_sent(session)) == 2


def test_one_pass_routes_more_pending_mentions_than_one_scan_and_one_batch_find(
    session: Session,
    engine: Engine,
    config: AlertsConfig,
    make: Factory,
    alice: Tenancy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("alerts.jobs.SCAN", 3)
    monkeypatch.setattr("alerts.jobs.BATCH", 2)
    monkeypatch.setattr("alerts.routing.BATCH", 2)
    for _ in range(7):
        make.mention(alice, labels=["threat"])
    assert route(engine, config).routed == 7
    assert len(alerts_sent(session)) == 7
    assert route(engine, config).routed == 0


def test_a_mention_never_triggers_two_alerts_however_often_routing_runs(
    session: Session, engine: Engine, config: AlertsConfig, make: Factory, alice: Tenancy, org: Tenancy
) -> None:
    make.mention(alice, labels=["threat"])
    for minutes in range(0, 60, 7):
        route(engine, config, NOW + timedelta(minutes=minutes))
    assert len(alerts_sent(session)) == 2
    assert session.scalar(select(func.count()).select_from(AlertMention)) == 2


def test_a_relabelled_mention_reaches_new_audiences_but_never_a_recipient_twice(
    session: Session, engine: Engine, config: AlertsConfig, make: Factory, alice: Tenancy, org: Tenancy
) -> None:
    mention = make.mention(alice, labels=["abusive"])
    route(engine, config)
    make.relabel(mention, ("threat",), classified_at=NOW + timedelta(minutes=2))
    route(engine, config, NOW + timedelta(minutes=3))
    assert alert_recipients(session) == sorted([alice.recipient.email, org.recipient.email])  # type: ignore[union-attr]


def test_a_mention_corrected_after_routing_is_routed_again_with_its_new_labels(
    session: Session, engine: Engine, config: AlertsConfig, make: Factory, alice: Tenancy, org: Tenancy
) -> None:
    mention = make.mention(alice, labels=["abusive"])
    route(engine, config)
    correct_labels(session, [mention.id], ["threat"], by="Priya")
    session.commit()
    assert route(engine, config, NOW + timedelta(minutes=3)).routed == 1
    assert route(engine, config, NOW + timedelta(minutes=4)).routed == 0  # once
    assert alert_recipients(session) == sorted([alice.recipient.email, org.recipient.email])  # type: ignore[union-attr]


def test_a_correction_made_while_routing_reads_the_old_labels_is_routed_by_the_next_pass(
    session: Session, engine: Engine, config: AlertsConfig, make: Factory, alice: Tenancy, org: Tenancy
) -> None:
    """The case team marks a post a threat just as routing has read it as abuse: the correction
    must not pass for routed along with the abuse."""
    mention = make.mention(alice, labels=["abusive"])
    read, corrected = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def labels_read(*args: object) -> None:
        if "LEFT OUTER JOIN routed_mentions" in str(args[2]):
            read.set()
            corrected.wait(2)  # a correction that did not wait for this pass would commit now

    def routing_pass() -> None:
        try:
            with transaction(engine) as pass_session:
                lock_routing(pass_session)
                assert route_batch(pass_session, config, NOW).routed == 1
        except BaseException as error:
            failures.append(error)
        finally:
            read.set()

    def correcting() -> None:
        read.wait()
        try:
            with transaction(engine) as review_session:
                correct_labels(review_session, [mention.id], ["threat"], by="Priya")
        except BaseException as error:
            failures.append(error)
        corrected.set()

    event.listen(engine, "after_cursor_execute", labels_read)
    threads = [threading.Thread(target=routing_pass), threading.Thread(target=correcting)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    event.remove(engine, "after_cursor_execute", labels_read)
    assert failures == []
    assert route(engine, config, NOW + timedelta(minutes=3)).routed == 1
    assert alert_recipients(session) == sorted([alice.recipient.email, org.recipient.email])  # type: ignore[union-attr]


def test_the_database_refuses_a_second_alert_for_the_same_mention_and_recipient(
    session: Session, engine: Engine, config: AlertsConfig, make: Factory, alice: Tenancy
) -> None:
    mention = make.mention(alice, labels=["threat"])
    route(engine, config)
    assert alice.recipient
    duplicate = Alert(
        recipient_id=alice.recipient.id,
        label="threat",
        doctor_id=alice.doctors[0].id,
        window_ends_at=NOW,
        due_at=NOW,
        enqueued_at=NOW,
    )
    duplicate.items.append(AlertMention(mention_id=mention.id, recipient_id=alice.recipient.id))
    session.add(duplicate)
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()


@pytest.mark.parametrize(
    ("label", "days_old", "alerted"),
    [
        ("abusive", 2, True),
        ("abusive", 4, False),  # older than alerts.max_age_hours: the digest only
        ("threat", 4, True),  # a threat found late may still be live
        ("threat", 15, False),  # older than alerts.threat_max_age_hours
    ],
)
def test_posts_found_late_go_to_the_digest_only_unless_they_are_recent_enough_threats(
    session: Session,
    engine: Engine,
    config: AlertsConfig,
    make: Factory,
    alice: Tenancy,
    label: str,
    days_old: int,
    alerted: bool,
) -> None:
    make.mention(alice, labels=[label], created_at=NOW - timedelta(days=days_old), found_at=NOW)
    assert route(engine, config).routed == 1
    assert bool(alerts_sent(session)) is alerted


def test_abuse_found_at_once_but_labelled_days_later_is_still_alerted(
    session: Session, engine: Engine, config: AlertsConfig, make: Factory, alice: Tenancy
) -> None:
    """After a classifier outage the practice has not heard of the post: it is news, however old."""
    posted = NOW - timedelta(days=5)
    make.mention(alice, labels=["abusive"], created_at=posted, found_at=posted + timedelta(minutes=10))
    route(engine, config)
    assert len(alerts_sent(session)) == 1


def test_an_old_post_relabelled_after_a_model_change_goes_to_the_digest_only(
    session: Session, engine: Engine, config: AlertsConfig, make: Factory, alice: Tenancy
) -> None:
    posted = NOW - timedelta(days=5)
    mention = make.mention(alice, labels=["critical"], created_at=posted)
    route(engine, config, now=posted + timedelta(hours=1))
    make.relabel(mention, ("abusive",), classified_at=NOW)
    assert route(engine, config).routed == 1
    assert alerts_sent(session) == []


def test_a_threat_is_never_held_to_a_shorter_limit_than_other_labels(
    session: Session, alert_settings: Settings, engine: Engine, make: Factory, alice: Tenancy
) -> None:
    config = load_config(alert_settings.with_overrides(alerts__max_age_hours=720))  # a slow feed: 30 days
    make.mention(alice, labels=["threat"], created_at=NOW - timedelta(days=20))
    route(engine, config)
    assert len(alerts_sent(session)) == 1


def test_mentions_wait_for_their_classification(
    session: Session, engine: Engine, config: AlertsConfig, make: Factory, alice: Tenancy
) -> None:
    make.mention(alice, classify=False)
    assert route(engine, config).routed == 0


def test_the_settings_decide_which_labels_go_out_at_once_and_to_whom(
    session: Session,
    engine: Engine,
    alert_settings: Settings,
    make: Factory,
    alice: Tenancy,
    org: Tenancy,
) -> None:
    config = load_config(alert_settings.with_overrides(alerts__immediate='{"critical": ["organisation"]}'))
    make.mention(alice, labels=["critical"])
    make.mention(alice, labels=["threat"])
    route(engine, config)
    assert alert_recipients(session) == [org.recipient.email]  # type: ignore[union-attr]
    assert alerts_sent(session)[0].subject.startswith("[Vigil] Criticism:")


def test_a_post_seen_again_naming_a_newly_registered_doctor_alerts_only_their_practice(
    session: Session,
    engine: Engine,
    config: AlertsConfig,
    make: Factory,
    alice: Tenancy,
    bob: Tenancy,
    org: Tenancy,
) -> None:
    mention = make.mention(
        alice, labels=["threat"], text="Dr Amira Hassan and Dr Benedict Osei: watch your backs"
    )
    mention.canonical_url = canonical_url(mention.url)  # as the collector stores it
    session.commit()
    route(engine, config)
    again = Post("x", mention.external_id, mention.url, mention.author, mention.created_at, mention.text)
    matches = [EntityMatch(t.doctors[0].id, None, t.doctors[0].full_name, "name") for t in (alice, bob)]
    assert store_matched(session, [(again, matches)]).linked == 1
    session.commit()
    assert route(engine, config).routed == 1  # its labels stand: it is routed again at once
    assert alert_recipients(session) == sorted(
        [alice.recipient.email, org.recipient.email, bob.recipient.email]  # type: ignore[union-attr]
    )


def just_now() -> datetime:
    """When a post the collector stores now was posted: it records the time it found it by the real clock."""
    return utcnow() - timedelta(minutes=5)


def alert_entry(tenancy: Tenancy) -> tuple[Post, list[EntityMatch]]:
    """One article as it reaches the Google Alerts feed of this practice's doctor."""
    doctor = tenancy.doctors[0]
    text = f"Dr {doctor.full_name} will get what is coming"
    entry = Post("rss", f"alert:{doctor.id}", "https://news.example/gp-row", "", just_now(), text)
    return entry, [EntityMatch(doctor.id, None, doctor.full_name, "name")]


def test_an_article_in_two_practices_alerts_feeds_alerts_each_practice_and_the_organisation_of_each(
    session: Session,
    engine: Engine,
    config: AlertsConfig,
    make: Factory,
    alice: Tenancy,
    bob: Tenancy,
    org: Tenancy,
) -> None:
    store_matched(session, [alert_entry(alice), alert_entry(bob)])
    for mention in session.scalars(select(Mention)):
        mention.classification = Classification(model_id="test-model", model_version="1", threat=True)
    session.commit()
    assert route(engine, config).routed == 2
    assert alert_recipients(session) == sorted(
        [alice.recipient.email, bob.recipient.email] + [org.recipient.email] * 2  # type: ignore[union-attr]
    )  # each practice its own snippet; the organisation a threat to each of two members


def zara_with_her_own_alerts(session: Session, alice: Tenancy) -> tuple[Doctor, Recipient]:
    """Dr Hassan's colleague, who gets alerts of her own; and a threat to Dr Hassan in an article."""
    colleague = add_colleague(session, alice, "1000011", "Zara Khan")
    own = Recipient(email="zara@a10001.example", scope=Scope.DOCTOR, tenant=alice.tenant, doctor=colleague)
    session.add(own)
    store_matched(session, [alert_entry(alice)])
    session.scalars(select(Mention)).one().classification = Classification(
        model_id="test-model", model_version="1", threat=True
    )
    session.commit()
    return colleague, own


def zara_entry(colleague: Doctor) -> tuple[Post, list[EntityMatch]]:
    """The same article as it reaches Dr Khan's own Google Alert."""
    entry = Post(
        "rss", "alert:zara", "https://news.example/gp-row", "", just_now(), "Dr Zara Khan will get hers"
    )
    return entry, [EntityMatch(colleague.id, None, "Zara Khan", "name")]


def test_a_doctor_who_gets_their_own_alerts_hears_of_an_article_their_practice_had_already(
    session: Session, engine: Engine, config: AlertsConfig, alice: Tenancy, org: Tenancy
) -> None:
    colleague, own = zara_with_her_own_alerts(session, alice)
    route(engine, config)
    assert store_matched(session, [zara_entry(colleague)]).linked
    session.commit()
    assert route(engine, config).routed == 1
    assert alert_recipients(session) == sorted(
        [alice.recipient.email, org.recipient.email, own.email]  # type: ignore[union-attr]
    )  # she hears of it; her practice and the organisation not twice


def test_a_doctor_linked_while_a_routing_pass_is_under_way_is_alerted_by_the_next(
    session: Session, engine: Engine, config: AlertsConfig, alice: Tenancy, org: Tenancy
) -> None:
    colleague, own = zara_with_her_own_alerts(session, alice)
    routed, collected = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def routing_pass() -> None:  # reads the mention while it names Dr Hassan alone
        try:
            with transaction(engine) as pass_session:
                lock_routing(pass_session)
                route_batch(pass_session, config, NOW)
                routed.set()
                collected.wait(2)  # a collector that did not wait for this pass would commit now
        except BaseException as error:
            failures.append(error)
        finally:
            routed.set()

    def collecting() -> None:
        routed.wait()
        try:
            with transaction(engine) as collector_session:
                store_matched(collector_session, [zara_entry(colleague)])
        except BaseException as error:
            failures.append(error)
        collected.set()

    threads = [threading.Thread(target=routing_pass), threading.Thread(target=collecting)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    route(engine, config)
    assert own.email in alert_recipients(session)
