from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from collector.matching import EntityMatch
from collector.post import Post
from collector.store import store_matched
from tests.conftest import Tenancy
from vigil.models import Mention, MentionEntity

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
    assert (report.stored, report.duplicates) == (1, 1)


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
