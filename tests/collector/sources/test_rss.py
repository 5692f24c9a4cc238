from __future__ import annotations

import feedparser
import pytest

from collector.sources.base import Context
from collector.sources.rss import FeedSource, to_post
from tests.collector.fakes.corpus import more_items
from tests.collector.fakes.faults import SourceContract, fetch_all, source_settings
from tests.collector.fakes.feeds import FakeFeeds, story_url
from tests.collector.fakes.server import FakeServer, Reply

NAME = "Amira Hassan"


class Harness:
    data_path = "/feeds/.*"
    auth_path = "/feeds/.*"
    page_size = 10

    def __init__(self, server: FakeServer, feeds: int = 1, kind: str = "atom") -> None:
        self.server = server
        self.api = FakeFeeds(server, feeds, kind)

    def seed(self, count: int) -> None:
        self.api.items += more_items(self.api.items, count, NAME)

    def source(self) -> FeedSource:
        settings = source_settings(
            sources__rss__enabled=True, sources__rss__feeds=self.api.urls(self.server.base_url)
        )
        return FeedSource(Context(settings=settings))


@pytest.fixture
def harness(server: FakeServer) -> Harness:
    return Harness(server)


class TestContract(SourceContract):
    """Feeds do not page: "several pages" are several feeds."""

    @pytest.fixture
    def harness(self, server: FakeServer) -> Harness:
        return Harness(server, feeds=3)


def test_google_alerts_entries_become_posts_with_the_real_link(harness: Harness) -> None:
    harness.seed(1)
    [post], batch = fetch_all(harness.source())
    item = harness.api.items[0]
    assert batch.error is None
    assert post.source == "rss"
    assert post.external_id == f"tag:google.com,2013:googlealerts/feed:{9000000000 + item.number}"
    assert post.url == story_url(item)
    assert post.text.startswith(item.text)  # <b> tags and entities are gone
    assert "<b>" not in post.text and "&hellip;" not in post.text
    assert post.created_at == item.created_at
    assert post.author == ""  # not the feed title, which names whom the alert watches


def test_rss_items_become_posts(server: FakeServer) -> None:
    harness = Harness(server, kind="rss")
    harness.seed(2)
    posts, batch = fetch_all(harness.source())
    assert batch.error is None
    assert [post.external_id for post in posts] == ["leeds-news-1", "leeds-news-2"]
    assert posts[0].author == "newsdesk@leedsnews.example (News desk)"
    assert posts[0].created_at == harness.api.items[0].created_at


def test_an_unchanged_feed_is_asked_for_conditionally_and_answers_304(harness: Harness) -> None:
    harness.seed(2)
    source = harness.source()
    first, batch = fetch_all(source)
    second, batch = fetch_all(source, batch.state)
    request = harness.server.calls("/feeds/.*")[-1]
    assert request.headers["if-none-match"].startswith('"')
    assert request.headers["if-modified-since"] == harness.api.last_modified
    assert len(first) == 2 and second == []
    harness.seed(1)
    third, _ = fetch_all(source, batch.state)
    assert len(third) == 3  # the feed changed: the store skips the two it holds


def test_one_failing_feed_does_not_stop_the_others(server: FakeServer) -> None:
    harness = Harness(server, feeds=2)
    harness.seed(4)
    server.fail(harness.api.unauthorized(), path="/feeds/alerts-0", times=None)
    posts, batch = fetch_all(harness.source())
    assert len(posts) == 2
    assert batch.error is not None and batch.error.permanent
    assert "alerts-0" in batch.error.message


@pytest.mark.parametrize(
    "answer",
    [
        Reply(200, b"", {"Content-Type": "application/atom+xml"}),
        Reply(200, b"<html><body><p>Before you continue</p></body></html>", {"Content-Type": "text/xml"}),
    ],
    ids=["an empty body", "a web page served as XML"],
)
def test_an_answer_with_no_feed_in_it_is_a_failed_read_not_an_empty_feed(
    harness: Harness, answer: Reply
) -> None:
    harness.seed(2)
    harness.server.fail(answer, path="/feeds/alerts-0", times=None)
    posts, batch = fetch_all(harness.source())
    assert posts == [] and batch.error is not None and batch.error.transient
    assert "alerts-0: not a readable RSS or Atom feed" in batch.error.message
    harness.server.clear_faults()
    posts, batch = fetch_all(harness.source(), batch.state)
    assert batch.error is None and len(posts) == 2


def test_a_rate_limited_feed_waits_while_the_others_carry_on(server: FakeServer) -> None:
    harness = Harness(server, feeds=2)
    harness.seed(4)
    server.fail(harness.api.rate_limited(), path="/feeds/alerts-1", times=1)
    source = harness.source()
    _, batch = fetch_all(source)
    assert batch.error is not None and batch.error.retry_after is None  # the other feed was read
    calls = len(server.calls("/feeds/alerts-1"))
    fetch_all(source, batch.state)
    assert len(server.calls("/feeds/alerts-1")) == calls


def test_an_entry_without_an_author_takes_a_news_feeds_title() -> None:
    feed = feedparser.parse(
        "<rss version='2.0'><channel><title>Leeds News</title><item><title>Dr Amira Hassan retires</title>"
        "<link>https://leedsnews.example/1</link><guid>leeds-1</guid></item></channel></rss>"
    )
    assert to_post(feed.entries[0], "https://leedsnews.example/rss", feed.feed.title).author == "Leeds News"
