from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

import collector.run
from collector.post import Post
from collector.run import CheckpointMoved, advance_checkpoint, collect_once
from collector.sources import enabled_sources
from collector.store import StoreReport
from tests.collector.fakes.careopinion import API_KEY, FakeCareOpinion
from tests.collector.fakes.corpus import more_items
from tests.collector.fakes.feeds import FakeFeeds
from tests.collector.fakes.server import FakeServer, Reply
from tests.collector.fakes.x import PATH as X_PATH
from tests.collector.fakes.x import TOKEN as X_TOKEN
from tests.collector.fakes.x import FakeX
from tests.conftest import Tenancy
from vigil.errors import VigilError
from vigil.models import Mention, MentionEntity, OperatorEvent, SourceState
from vigil.runtime import Runtime
from vigil.settings import Settings

NAMING_ALICE = "Dr Amira Hassan in Leeds"


@pytest.fixture
def feeds(server: FakeServer) -> FakeFeeds:
    return FakeFeeds(server)


def runtime_for(settings: Settings, server: FakeServer, **overrides: object) -> Runtime:
    """Vigil on the test database, with the feed source (and any other) pointed at the fake server."""
    values: dict[str, object] = {
        "collector__timeout_seconds": 10,  # nothing here tests a timeout
        "collector__retry_attempts": 1,
        "collector__retry_wait_seconds": 0,
        "sources__rss__enabled": True,
        "sources__rss__feeds": [f"{server.base_url}/feeds/alerts-0"],
    }
    return Runtime(settings.with_overrides(**{**values, **overrides}))


def x_only(server: FakeServer, **overrides: object) -> dict[str, object]:
    """Settings for X alone, on the fake server, ten posts a page."""
    return {
        "sources__rss__enabled": False, "sources__x__enabled": True, "sources__x__base_url": server.base_url,
        "sources__x__bearer_token": X_TOKEN, "sources__x__max_results": 10, **overrides,
    }  # fmt: skip


def careopinion_at(server: FakeServer) -> dict[str, object]:
    return {
        "sources__careopinion__enabled": True,
        "sources__careopinion__base_url": server.base_url,
        "sources__careopinion__api_key": API_KEY,
    }


@pytest.fixture
def runtime(settings: Settings, server: FakeServer, feeds: FakeFeeds) -> Iterator[Runtime]:
    runtime = runtime_for(settings, server, collector__failure_alert_after=2)
    yield runtime
    runtime.close()


def events(session: Session) -> list[tuple[str, str]]:
    """The operator events so far (the read ends its transaction: SQLite locks on every BEGIN)."""
    found = [(e.kind, e.subject) for e in session.scalars(select(OperatorEvent).order_by(OperatorEvent.id))]
    session.commit()
    return found


def state(session: Session, name: str = "rss") -> SourceState:
    session.expire_all()
    row = session.get(SourceState, name)
    assert row is not None
    session.commit()
    return row


def test_a_pass_stores_the_mentions_with_the_checkpoint(
    runtime: Runtime, feeds: FakeFeeds, session: Session, alice: Tenancy
) -> None:
    feeds.items += more_items(feeds.items, 3, NAMING_ALICE)
    feeds.items += more_items(feeds.items, 1, "Harry Kane")
    [report] = collect_once(runtime)
    assert (report.posts_read, report.store.stored, report.store.unmatched, report.error) == (4, 3, 1, None)
    mentions = session.scalars(select(Mention)).all()
    assert len(mentions) == 3
    assert all(m.entities[0].doctor_id == alice.doctors[0].id for m in mentions)
    assert "Leeds" in mentions[0].entities[0].reason
    row = state(session)
    assert row.checkpoint["feeds"] and row.version == 1 and row.last_success_at is not None
    assert (row.posts_read, row.mentions_stored, row.consecutive_failures) == (4, 3, 0)


def test_a_stop_request_ends_a_poll_after_the_current_batch(
    settings: Settings, server: FakeServer, session: Session, alice: Tenancy
) -> None:
    stories = FakeCareOpinion(server, ["A10001"])
    stories.items += more_items(stories.items, 250, "the receptionist")
    runtime = runtime_for(
        settings, server, sources__rss__enabled=False, collector__max_pages=1, **careopinion_at(server)
    )
    stop = threading.Event()
    stop.set()
    [report] = collect_once(runtime, stop=stop)
    assert (report.batches, report.store.stored) == (1, 100)
    assert state(session, "careopinion").checkpoint["queries"]["A10001"]["cursor"] == "100"
    [report] = collect_once(runtime)  # the next poll carries on from the checkpoint
    assert (report.batches, report.store.stored) == (2, 150)
    runtime.close()


def test_a_second_pass_stores_nothing_twice(
    runtime: Runtime, feeds: FakeFeeds, session: Session, alice: Tenancy
) -> None:
    feeds.items += more_items(feeds.items, 3, NAMING_ALICE)
    collect_once(runtime)
    feeds.items += more_items(feeds.items, 2, NAMING_ALICE)
    [report] = collect_once(runtime)
    assert (report.store.stored, report.store.duplicates) == (2, 3)
    assert len(session.scalars(select(Mention)).all()) == 5


def test_repeated_failures_raise_one_operator_event_and_recovery_another(
    runtime: Runtime, server: FakeServer, feeds: FakeFeeds, session: Session, alice: Tenancy
) -> None:
    server.fail(Reply(503, b"down"), path="/feeds/.*", times=None)
    for _ in range(4):
        [report] = collect_once(runtime)
        assert report.error and "503" in report.error
    row = state(session)
    assert row.consecutive_failures == 4 and "503" in row.last_error and row.alerted_at is not None
    assert events(session) == [("source_failing", "Source rss is not collecting")]
    server.clear_faults()
    collect_once(runtime)
    assert events(session)[-1] == ("source_recovered", "Source rss is collecting again")
    assert state(session).consecutive_failures == 0


def test_an_authentication_failure_tells_the_operator_at_once(
    runtime: Runtime, server: FakeServer, feeds: FakeFeeds, session: Session, alice: Tenancy
) -> None:
    server.fail(feeds.unauthorized(), path="/feeds/.*", times=None)
    collect_once(runtime)
    assert events(session) == [("source_failing", "Source rss is not collecting")]
    collect_once(runtime)
    assert len(events(session)) == 1  # told once, not at every poll


def test_a_rate_limited_source_waits_for_its_reset_while_the_others_carry_on(
    settings: Settings, server: FakeServer, feeds: FakeFeeds, session: Session, alice: Tenancy
) -> None:
    stories = FakeCareOpinion(server, ["A10001"])
    stories.items += more_items(stories.items, 2, "the receptionist was rude")
    runtime = runtime_for(settings, server, **careopinion_at(server))
    server.fail(feeds.rate_limited(), path="/feeds/.*", times=None)
    reports = {report.source: report for report in collect_once(runtime)}
    assert reports["rss"].error and reports["careopinion"].store.stored == 2
    assert state(session).retry_after is not None
    feed_calls = len(server.calls("/feeds/.*"))
    stories.items += more_items(stories.items, 1, "lovely nurse")
    reports = {report.source: report for report in collect_once(runtime)}
    assert reports["rss"].skipped and "rate limit" in reports["rss"].skipped
    assert len(server.calls("/feeds/.*")) == feed_calls
    assert reports["careopinion"].store.stored == 1
    runtime.close()


def test_a_story_filed_under_a_practice_names_that_practice(
    settings: Settings, server: FakeServer, session: Session, alice: Tenancy, bob: Tenancy
) -> None:
    stories = FakeCareOpinion(server, ["A10001"])
    stories.items += more_items(stories.items, 1, "the receptionist")
    runtime = runtime_for(settings, server, sources__rss__enabled=False, **careopinion_at(server))
    collect_once(runtime)
    [entity] = session.scalars(select(MentionEntity)).all()
    assert entity.practice_id == alice.practice.id and entity.matched_text == "A10001"
    assert "ODS code A10001" in entity.reason
    assert {request.arg("nacs") for request in server.calls("/api/v2/opinions")} == {"A10001"}
    assert sorted(server.calls("/api/v2/opinions")[0].query["nacs"]) == ["A10001", "B20002"]
    runtime.close()


def test_a_source_that_cannot_start_is_recorded_as_a_failure(
    settings: Settings, server: FakeServer, session: Session, alice: Tenancy
) -> None:
    runtime = runtime_for(
        settings,
        server,
        sources__rss__enabled=False,
        sources__mastodon__enabled=True,
        sources__mastodon__instances=["mastodon.social"],  # no scheme: not an instance URL
    )
    [report] = collect_once(runtime)
    assert report.error and "could not start" in report.error and "mastodon.social" in report.error
    assert "could not start" in state(session, "mastodon").last_error
    assert events(session) == [("source_failing", "Source mastodon is not collecting")]
    runtime.close()


def refuse_to_store(session: Session, matched: list[tuple[Post, object]]) -> StoreReport:
    """Stands in for ``store_matched`` when the database refuses the batch (a schema behind the
    code, a full disk): a real statement the database rejects, carrying a post's words."""
    session.execute(
        text("INSERT INTO no_such_table VALUES (:text)"), {"text": "Dr Amira Hassan lives on Elm Road"}
    )
    raise AssertionError("the database accepted a statement on a table that does not exist")


def test_a_batch_the_database_refuses_is_a_failed_poll_and_is_read_again_once_it_can_be_stored(
    runtime: Runtime, feeds: FakeFeeds, session: Session, alice: Tenancy, monkeypatch: pytest.MonkeyPatch
) -> None:
    feeds.items += more_items(feeds.items, 3, NAMING_ALICE)
    with monkeypatch.context() as patch:
        patch.setattr(collector.run, "store_matched", refuse_to_store)
        for _ in range(2):
            [report] = collect_once(runtime)
            assert report.error is not None and report.error.startswith("could not store what it read: ")
            assert "no_such_table" in report.error and "(details in the log)" in report.error
            assert "Elm Road" not in report.error  # the statement's values stay in the log
    row = state(session)
    assert (row.consecutive_failures, row.version, row.posts_read) == (2, 0, 6)
    assert row.last_error == report.error
    assert events(session) == [("source_failing", "Source rss is not collecting")]
    [report] = collect_once(runtime)  # the checkpoint did not move: the same posts are read again
    assert (report.error, report.store.stored) == (None, 3)
    assert events(session)[-1] == ("source_recovered", "Source rss is collecting again")


def test_a_batch_the_database_refuses_still_counts_against_the_x_read_budget(
    settings: Settings, server: FakeServer, session: Session, alice: Tenancy, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = FakeX(server)
    api.items += more_items(api.items, 30, NAMING_ALICE)
    runtime = runtime_for(settings, server, **x_only(server, sources__x__monthly_read_budget=20))
    monkeypatch.setattr(collector.run, "store_matched", refuse_to_store)
    [report] = collect_once(runtime)
    assert report.error and "could not store what it read" in report.error
    requests = len(server.calls(X_PATH))
    assert requests == 2  # two pages of 10: the whole budget
    [report] = collect_once(runtime)
    runtime.close()
    assert len(server.calls(X_PATH)) == requests  # X billed 20 reads: the budget is spent
    assert state(session, "x").checkpoint["usage"]["reads"] == 20
    assert ("x_budget_spent", "X read budget spent") in events(session)


def test_x_s_monthly_usage_cap_tells_the_operator_at_once_and_x_waits_for_next_month(
    settings: Settings, server: FakeServer, session: Session, alice: Tenancy
) -> None:
    api = FakeX(server)
    api.items += more_items(api.items, 3, NAMING_ALICE)
    runtime = runtime_for(settings, server, **x_only(server))
    server.fail(api.usage_capped(), path=X_PATH, times=None)
    [report] = collect_once(runtime)
    assert report.error and "monthly usage cap" in report.error
    assert events(session) == [("source_failing", "Source x is not collecting")]
    [report] = collect_once(runtime)
    runtime.close()
    resume = state(session, "x").retry_after
    assert resume is not None and resume.day == 1 and resume > datetime.now(UTC)
    assert report.skipped and f"{resume:%d %B %Y} 00:00 UTC" in report.skipped
    assert len(server.calls(X_PATH)) == 1  # not asked again this month


def test_a_checkpoint_moved_by_another_collector_is_never_overwritten(
    session: Session, alice: Tenancy
) -> None:
    session.add(SourceState(source="rss", checkpoint={"feeds": {}}, version=3, last_error=""))
    session.commit()
    with pytest.raises(CheckpointMoved):
        advance_checkpoint(session, "rss", {"feeds": {"stale": {}}}, version=2)
    session.rollback()
    assert advance_checkpoint(session, "rss", {"feeds": {"new": {}}}, version=3) == 4
    session.commit()
    assert state(session).checkpoint == {"feeds": {"new": {}}}


def test_asking_for_a_source_that_is_not_enabled_is_an_error(runtime: Runtime) -> None:
    with pytest.raises(VigilError, match="source 'x' is not enabled"):
        collect_once(runtime, "x")


def test_an_enabled_source_without_credentials_stops_start_up(settings: Settings) -> None:
    with pytest.raises(VigilError, match="VIGIL_SOURCES__X__BEARER_TOKEN"):
        enabled_sources(settings.with_overrides(sources__x__enabled=True))
