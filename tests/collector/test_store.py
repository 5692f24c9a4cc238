from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from collector.matching import EntityMatch
from collector.post import Post
from collector.store import store_matched
from tests.conftest import Tenancy, add_colleague
from vigil.db import session_factory, transaction
from vigil.models import Classification, Doctor, Mention, MentionEntity, RoutedMention

WHEN = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


def post(
    external_id: str = "1", source: str = "x", url: str = "", text: str = "Dr Amira Hassan in Leeds"
) -> Post:
    return Post(source, external_id, url or f"https://x.com/pat/status/{external_id}", "@pat", WHEN, text)


def names_doctor(tenancy: Tenancy, text: str = "Amira Hassan") -> list[EntityMatch]:
    return [EntityMatch(tenancy.doctors[0].id, None, text, "name + town 'Leeds'")]


def count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def test_it_stores_a_matched_post_with_the_entities_it_names(session: Session, alice: Tenancy) -> None:
    matches = [
        *names_doctor(alice),
        EntityMatch(None, alice.practice.id, "Alice Road Surgery", "practice name"),
    ]
    report = store_matched(session, [(post(), matches)])
    session.commit()
    mention = session.scalars(select(Mention)).one()
    assert report.stored == 1
    assert (mention.source, mention.external_id, mention.created_at) == ("x", "1", WHEN)
    assert mention.canonical_url == "https://x.com/i/status/1"
    assert [(e.doctor_id, e.practice_id, e.matched_text, e.reason) for e in mention.entities] == [
        (alice.doctors[0].id, None, "Amira Hassan", "name + town 'Leeds'"),
        (None, alice.practice.id, "Alice Road Surgery", "practice name"),
    ]


def test_a_post_dated_in_the_future_is_stored_as_posted_when_it_was_found(
    session: Session, alice: Tenancy
) -> None:
    """Bluesky, Mastodon and feeds carry the date the author's client wrote: next year, say."""
    future = replace(post(), created_at=datetime(2099, 1, 1, tzinfo=UTC))
    store_matched(session, [(future, names_doctor(alice))])
    session.commit()
    mention = session.scalars(select(Mention)).one()
    assert mention.created_at <= mention.collected_at <= datetime.now(UTC)


def test_it_does_not_store_posts_that_name_no_one(session: Session, alice: Tenancy) -> None:
    report = store_matched(session, [(post(text="Harry Kane scores again"), [])])
    assert report.unmatched == 1 and report.stored == 0
    assert count(session, Mention) == 0


def test_it_skips_posts_already_stored(session: Session, alice: Tenancy) -> None:
    store_matched(session, [(post(), names_doctor(alice))])
    session.commit()
    report = store_matched(session, [(post(), names_doctor(alice)), (post("2"), names_doctor(alice))])
    session.commit()
    assert (report.stored, report.duplicates) == (1, 1)
    assert count(session, Mention) == 2
    assert count(session, MentionEntity) == 2


def test_it_stores_a_post_once_when_another_source_finds_it_at_the_same_url(
    session: Session, alice: Tenancy
) -> None:
    tweet = post("1861234567890123456", url="https://x.com/pat/status/1861234567890123456")
    shared = post(
        "t3_abc", source="reddit", url="https://mobile.twitter.com/Pat/status/1861234567890123456?s=20"
    )
    store_matched(session, [(tweet, names_doctor(alice))])
    report = store_matched(session, [(shared, names_doctor(alice))])
    session.commit()
    assert report.duplicates == 1
    assert session.scalars(select(Mention.source)).all() == ["x"]


def test_it_stores_a_post_found_twice_in_one_batch_once(session: Session, alice: Tenancy) -> None:
    report = store_matched(session, [(post(), names_doctor(alice)), (post(), names_doctor(alice))])
    session.commit()
    assert (report.stored, report.duplicates, report.linked) == (1, 1, 0)
    assert count(session, MentionEntity) == 1


def test_posts_without_a_url_are_told_apart_by_their_ids(session: Session, alice: Tenancy) -> None:
    first = Post("files", "a", "", "", WHEN, "Dr Amira Hassan in Leeds")
    second = Post("files", "b", "", "", WHEN, "Dr Amira Hassan in Leeds")
    report = store_matched(session, [(first, names_doctor(alice)), (second, names_doctor(alice))])
    session.commit()
    assert report.stored == 2


def test_one_entity_named_twice_is_recorded_once(session: Session, alice: Tenancy) -> None:
    store_matched(session, [(post(), names_doctor(alice) + names_doctor(alice, "Dr Hassan"))])
    session.commit()
    assert count(session, MentionEntity) == 1


def test_scraped_text_is_stored_safely(session: Session, alice: Tenancy) -> None:
    nasty = Post(
        "rss",
        "g" * 600,
        "https://news.example/a",
        "a" * 400,
        WHEN,
        "Dr Amira\x00 Hassan in Leeds",
        lang="en-GB-x-very-long-tag",
    )
    store_matched(session, [(nasty, names_doctor(alice))])
    session.commit()
    mention = session.scalars(select(Mention)).one()
    assert mention.text == "Dr Amira Hassan in Leeds"
    assert mention.external_id.startswith("sha256:") and len(mention.external_id) <= 255
    assert len(mention.author) == 255 and len(mention.lang or "") <= 16
    store_matched(session, [(nasty, names_doctor(alice))])  # the same long id maps to the same key
    session.commit()
    assert count(session, Mention) == 1


def test_half_an_emoji_does_not_stop_the_post_being_stored(session: Session, alice: Tenancy) -> None:
    cut = Post(
        "rss", "cut-emoji", "https://news.example/b", "someone", WHEN, "Dr Amira Hassan \ud83d in Leeds"
    )
    store_matched(session, [(cut, names_doctor(alice))])
    session.commit()
    assert session.scalars(select(Mention.text)).one() == "Dr Amira Hassan \ufffd in Leeds"


def alert_entry(feed: str, text: str) -> Post:
    """One article as it reaches one doctor's Google Alerts feed: its own entry id, the same address."""
    return Post(
        "rss", f"tag:google.com,2013:googlealerts/feed:{feed}", "https://news.example/gp-row", "", WHEN, text
    )


def names(*tenancies: Tenancy) -> list[EntityMatch]:
    return [EntityMatch(t.doctors[0].id, None, t.doctors[0].full_name, "name + town") for t in tenancies]


def mentions(session: Session) -> list[Mention]:
    session.expire_all()
    return list(session.scalars(select(Mention).order_by(Mention.id)))


def linked(mention: Mention) -> list[int | None]:
    return [entity.doctor_id for entity in mention.entities]


def labelled(session: Session, mention: Mention) -> None:
    """Labelled, routed and scanned, and claimed by a detection pass (its result for the old
    entities is void)."""
    mention.classification = Classification(model_id="m", model_version="1", praise=True)
    session.add(RoutedMention(mention_id=mention.id, classified_at=WHEN, routed_at=WHEN))
    mention.detected_at = mention.detect_claimed_at = WHEN
    mention.detect_claimed_by = "worker:1:abc"
    session.commit()


def routed_and_scanned(session: Session, mention: Mention) -> tuple[bool, bool]:
    is_routed = session.get(RoutedMention, mention.id) is not None
    return is_routed, mention.detected_at is not None or mention.detect_claimed_by is not None


def test_another_entry_at_the_address_naming_someone_new_is_their_own_mention(
    session: Session, alice: Tenancy, bob: Tenancy
) -> None:
    first = alert_entry("1", "Row at Leeds surgery: Dr Amira Hassan said")
    second = alert_entry("2", "Dr Benedict Osei, who moved from Bristol, should watch his back")
    store_matched(session, [(first, names(alice))])
    session.commit()
    report = store_matched(session, [(second, names(alice, bob))])  # its snippet names both
    session.commit()
    stored, copy = mentions(session)
    assert (report.stored, report.duplicates) == (1, 0)
    assert (stored.text, linked(stored)) == (first.text, [alice.doctors[0].id])
    assert (copy.text, linked(copy)) == (second.text, [bob.doctors[0].id])  # each doctor once
    assert (copy.copy_of, copy.canonical_url, copy.url) == (stored.id, None, stored.url)


def test_entries_at_one_address_in_one_batch_are_stored_the_same_way(
    session: Session, alice: Tenancy, bob: Tenancy
) -> None:
    entries = [(alert_entry("1", "Dr Amira Hassan"), names(alice)), (alert_entry("2", "Dr Osei"), names(bob))]
    assert store_matched(session, entries).stored == 2
    session.commit()
    assert [linked(mention) for mention in mentions(session)] == [[alice.doctors[0].id], [bob.doctors[0].id]]


def test_an_entry_seen_again_or_naming_no_one_new_is_a_duplicate(
    session: Session, alice: Tenancy, bob: Tenancy
) -> None:
    store_matched(session, [(alert_entry("1", "Dr Amira Hassan"), names(alice))])
    store_matched(session, [(alert_entry("2", "Dr Osei"), names(bob))])
    session.commit()
    again = [(alert_entry("2", "Dr Osei"), names(bob)), (alert_entry("3", "Dr Hassan again"), names(alice))]
    report = store_matched(session, again)
    session.commit()
    assert (report.stored, report.duplicates, report.linked) == (0, 2, 0)
    assert len(mentions(session)) == 2


def test_a_post_seen_again_after_the_register_grew_is_linked_and_routed_again(
    session: Session, alice: Tenancy, bob: Tenancy
) -> None:
    tweet = post(text="Dr Amira Hassan and Dr Benedict Osei, both useless")
    store_matched(session, [(tweet, names(alice))])  # before Dr Osei was registered
    session.commit()
    [mention] = mentions(session)
    labelled(session, mention)
    report = store_matched(session, [(tweet, names(alice, bob))])
    session.commit()
    [mention] = mentions(session)
    assert (report.stored, report.duplicates, report.linked) == (0, 1, 1)
    assert linked(mention) == [alice.doctors[0].id, bob.doctors[0].id]
    first, late = mention.entities
    assert late.linked_at > first.linked_at  # Dr Osei's digest counts it in the week it reached him
    assert mention.classification is not None  # its labels stay
    assert routed_and_scanned(session, mention) == (False, False)  # routed and scanned again


def test_a_post_seen_again_naming_no_one_new_keeps_its_labels(session: Session, alice: Tenancy) -> None:
    store_matched(session, [(post(), names(alice))])
    session.commit()
    labelled(session, mentions(session)[0])
    store_matched(session, [(post(), names(alice))])
    session.commit()
    [mention] = mentions(session)
    assert mention.classification is not None and routed_and_scanned(session, mention) == (True, True)


def test_posts_without_an_address_sharing_an_id_are_never_joined(
    session: Session, alice: Tenancy, bob: Tenancy
) -> None:
    first = Post("reviews", "1", "", "", WHEN, "Dr Amira Hassan was rude to my mother")
    other = Post("reviews", "1", "", "", WHEN, "Dr Benedict Osei ignored my son")  # another file's row 1
    store_matched(session, [(first, names(alice))])
    report = store_matched(session, [(other, names(bob))])
    session.commit()
    [mention] = mentions(session)
    assert (report.duplicates, report.linked) == (1, 0)
    assert (mention.text, linked(mention)) == (first.text, [alice.doctors[0].id])


def test_an_entity_is_never_linked_twice_to_one_mention(session: Session, alice: Tenancy) -> None:
    store_matched(session, [(post(), names(alice))])
    session.commit()
    mention_id = session.scalars(select(Mention.id)).one()
    session.add(MentionEntity(mention_id=mention_id, doctor_id=alice.doctors[0].id, matched_text="Hassan"))
    with pytest.raises(IntegrityError):
        session.commit()


def test_an_entry_naming_only_a_practice_the_article_reached_makes_no_copy(
    session: Session, alice: Tenancy
) -> None:
    assert alice.practice is not None
    store_matched(session, [(alert_entry("1", "Dr Amira Hassan"), names(alice))])
    practice = [EntityMatch(None, alice.practice.id, "Alice Road Surgery", "practice name")]
    report = store_matched(session, [(alert_entry("2", "Alice Road Surgery in Leeds"), practice)])
    session.commit()
    assert (report.stored, report.duplicates, report.linked) == (0, 1, 0)  # the practice hears of it once
    assert [linked(mention) for mention in mentions(session)] == [[alice.doctors[0].id]]


def test_a_doctor_named_in_another_entry_at_a_practice_the_article_reached_joins_its_mention(
    session: Session, alice: Tenancy
) -> None:
    colleague = add_colleague(session, alice, "1000011", "Zara Khan")
    store_matched(session, [(alert_entry("1", "Dr Amira Hassan"), names(alice))])
    session.commit()
    labelled(session, mentions(session)[0])
    named = [EntityMatch(colleague.id, None, "Zara Khan", "name + town")]
    report = store_matched(session, [(alert_entry("2", "Dr Zara Khan, also at Alice Road"), named)])
    session.commit()
    [mention] = mentions(session)  # no copy: her practice has the article already
    assert (report.stored, report.duplicates, report.linked) == (0, 1, 1)
    assert linked(mention) == [alice.doctors[0].id, colleague.id]
    assert routed_and_scanned(session, mention) == (False, False)  # so that routing finds her


def test_a_doctor_at_a_practice_a_copy_reached_joins_the_copy_not_another_practices_mention(
    session: Session, alice: Tenancy, bob: Tenancy
) -> None:
    colleague = add_colleague(session, bob, "2000022", "Bola Ade")
    entries = [(alert_entry("1", "Dr Amira Hassan"), names(alice)), (alert_entry("2", "Dr Osei"), names(bob))]
    store_matched(session, entries)
    named = [EntityMatch(colleague.id, None, "Bola Ade", "name + town")]
    store_matched(session, [(alert_entry("3", "Dr Bola Ade of Bob Lane"), named)])
    session.commit()
    assert [linked(mention) for mention in mentions(session)] == [
        [alice.doctors[0].id],
        [bob.doctors[0].id, colleague.id],  # Alice's snippet stays Alice's
    ]


def test_a_copy_seen_again_is_not_linked_to_a_practice_the_article_reached(
    session: Session, alice: Tenancy, bob: Tenancy
) -> None:
    assert alice.practice is not None
    second = alert_entry("2", "Dr Benedict Osei, once of Alice Road Surgery")
    both = [*names(bob), EntityMatch(None, alice.practice.id, "Alice Road Surgery", "practice name")]
    store_matched(session, [(alert_entry("1", "Dr Amira Hassan"), names(alice)), (second, both)])
    session.commit()
    copy = mentions(session)[1]
    labelled(session, copy)
    report = store_matched(session, [(second, both)])
    session.commit()
    assert (report.duplicates, report.linked) == (1, 0)
    assert linked(mentions(session)[1]) == [bob.doctors[0].id]
    assert routed_and_scanned(session, mentions(session)[1]) == (True, True)


def test_two_collectors_joining_two_articles_in_opposite_orders_both_commit(
    backend: str, session: Session, engine: Engine, alice: Tenancy, bob: Tenancy
) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite runs one writer at a time: there is no deadlock to look for")
    zara, bola = (
        add_colleague(session, alice, "1000011", "Zara Khan"),
        add_colleague(session, bob, "2000022", "Bola Ade"),
    )
    x, y = "https://news.example/x", "https://news.example/y"

    def entry(feed: str, address: str, doctor: Doctor) -> tuple[Post, list[EntityMatch]]:
        post = Post("rss", feed, address, "", WHEN, f"Dr {doctor.full_name} again")
        return post, [EntityMatch(doctor.id, None, doctor.full_name, "name")]

    store_matched(session, [entry("a", x, alice.doctors[0]), entry("b", y, bob.doctors[0])])
    session.commit()
    outcomes: list[str] = []
    first = session_factory(engine)()
    store_matched(first, [entry("z", x, zara)])  # joins article X (and holds it)

    def second_collector() -> None:  # joins article Y, then would wait for the first collector
        with transaction(engine) as other:
            store_matched(other, [entry("bola-1", y, bola)])
        outcomes.append("second")

    thread = threading.Thread(target=second_collector)
    thread.start()
    time.sleep(0.5)
    store_matched(first, [entry("bola-2", y, bola)])  # the first now joins article Y too
    first.commit()
    first.close()
    outcomes.append("first")
    thread.join(10)
    assert sorted(outcomes) == ["first", "second"]
    assert sorted(linked(mention) for mention in mentions(session)) == [
        [alice.doctors[0].id, zara.id],
        [bob.doctors[0].id, bola.id],
    ]
