from __future__ import annotations

import pytest

from collector.sources.base import Context
from collector.sources.reddit import RedditSource, pack_or
from tests.collector.fakes.corpus import Item, more_items, recent
from tests.collector.fakes.faults import SourceContract, fetch_all, source_settings
from tests.collector.fakes.reddit import CLIENT_ID, CLIENT_SECRET, SEARCH_PATH, TOKEN_PATH, FakeReddit
from tests.collector.fakes.server import FakeServer

NAMES = ["Amira Hassan", "Alice Road Surgery"]


class Harness:
    data_path = SEARCH_PATH
    auth_path = TOKEN_PATH
    page_size = FakeReddit.page_size

    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.api = FakeReddit(server)

    def seed(self, count: int) -> None:
        self.api.items += more_items(self.api.items, count, NAMES[0])

    def source(self) -> RedditSource:
        settings = source_settings(
            sources__reddit__enabled=True,
            sources__reddit__client_id=CLIENT_ID,
            sources__reddit__client_secret=CLIENT_SECRET,
            sources__reddit__oauth_url=self.server.base_url,
            sources__reddit__reddit_url=self.server.base_url,
            sources__reddit__subreddits=["GPUK", "r/leeds"],
        )
        return RedditSource(Context(settings=settings, names=NAMES))


@pytest.fixture
def harness(server: FakeServer) -> Harness:
    return Harness(server)


class TestContract(SourceContract):
    pass


def test_it_searches_the_subreddits_together_newest_first_with_the_names_ored(harness: Harness) -> None:
    harness.seed(1)
    fetch_all(harness.source())
    [request] = harness.server.calls(SEARCH_PATH)
    assert request.path.rstrip("/") == "/r/GPUK+leeds/search"
    assert request.arg("q") == '"Amira Hassan" OR "Alice Road Surgery"'
    assert request.arg("sort") == "new" and request.arg("restrict_sr") in {"True", "true", "1"}


def test_it_turns_submissions_into_posts(harness: Harness) -> None:
    item = Item(7, recent(4), "Amira Hassan at Alice Road Surgery", "throwaway_99")
    harness.api.items.append(item)
    posts, batch = fetch_all(harness.source())
    assert batch.error is None
    [post] = posts
    assert post.source == "reddit"
    assert post.external_id.startswith("t3_")
    assert post.url.startswith("https://www.reddit.com/r/GPUK/comments/")
    assert post.author == "u/throwaway_99"
    assert post.created_at == item.created_at
    assert post.text == f"{item.text}\n\nAnyone else had this?"


def test_the_next_sweep_stops_at_the_newest_post_already_read(harness: Harness) -> None:
    harness.seed(150)
    source = harness.source()
    first, batch = fetch_all(source)
    harness.seed(5)
    calls = len(harness.server.calls(SEARCH_PATH))
    second, _ = fetch_all(source, batch.state)
    assert len(first) == 150
    assert {p.external_id for p in second} - {p.external_id for p in first} == {
        p.external_id for p in second[:5]
    }
    assert len(second) <= 6  # the five new posts, and at most the newest one read again
    assert len(harness.server.calls(SEARCH_PATH)) == calls + 1


def test_queries_are_packed_under_reddits_length_limit() -> None:
    names = [f'"Doctor Number {n}"' for n in range(100)]
    queries = pack_or(names)
    assert all(len(query) <= 512 for query in queries)
    assert sum(query.count('"') // 2 for query in queries) == 100
    assert len(queries) == 5
