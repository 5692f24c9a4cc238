from __future__ import annotations

import logging

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from collector.run import collect_once
from collector.sources.base import Context
from collector.sources.reddit import RedditSource, pack_or
from tests.collector.fakes.corpus import Item, more_items, recent
from tests.collector.fakes.faults import SourceContract, fetch_all, source_settings
from tests.collector.fakes.reddit import (
    CLIENT_ID,
    CLIENT_SECRET,
    COMMENTS_PATH,
    SEARCH_PATH,
    THREAD,
    TOKEN_PATH,
    FakeReddit,
)
from tests.collector.fakes.server import FakeServer, Reply
from tests.conftest import Tenancy
from vigil.models import Mention
from vigil.runtime import Runtime
from vigil.settings import Settings

NAMES = ["Amira Hassan", "Alice Road Surgery"]
NAMING_NO_ONE = "Waited forty minutes past my slot again, the receptionist shrugged"


class Harness:
    data_path = SEARCH_PATH
    auth_path = TOKEN_PATH
    page_size = FakeReddit.page_size

    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.api = FakeReddit(server)

    def seed(self, count: int) -> None:
        self.api.items += more_items(self.api.items, count, NAMES[0])

    def source(self, names: list[str] = NAMES, **overrides: object) -> RedditSource:
        settings = source_settings(**{**reddit_at(self.server), **overrides})
        return RedditSource(Context(settings=settings, names=names))


class CommentsHarness(Harness):
    """The same fake Reddit, its posts in the comment listing: search finds nothing."""

    data_path = COMMENTS_PATH

    def seed(self, count: int) -> None:
        self.api.comments += more_items(self.api.comments, count, NAMES[0])


def reddit_at(server: FakeServer) -> dict[str, object]:
    return {
        "sources__reddit__enabled": True,
        "sources__reddit__client_id": CLIENT_ID,
        "sources__reddit__client_secret": CLIENT_SECRET,
        "sources__reddit__oauth_url": server.base_url,
        "sources__reddit__reddit_url": server.base_url,
        "sources__reddit__subreddits": ["GPUK", "r/leeds"],
        "sources__reddit__comment_subreddits": ["GPUK", "r/NHS", "doctorsUK"],
    }


@pytest.fixture
def harness(server: FakeServer) -> Harness:
    return Harness(server)


class TestContract(SourceContract):
    pass


class TestCommentsContract(SourceContract):
    """The fault table again, on the comment listing (a rate limit there is reported as search's)."""

    @pytest.fixture
    def harness(self, server: FakeServer) -> Harness:
        return CommentsHarness(server)


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


# ---------------------------------------------------------------------------------------------
# Comments
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def comments(server: FakeServer) -> CommentsHarness:
    return CommentsHarness(server)


def comment_item(number: int, text: str, author: str = "angry_patient") -> Item:
    return Item(number, recent(10 - number), text, author)


def test_it_reads_the_newest_comments_of_the_comment_subreddits_together(comments: CommentsHarness) -> None:
    comments.seed(1)
    fetch_all(comments.source())
    [request] = comments.server.calls(COMMENTS_PATH)
    assert request.path.rstrip("/") == "/r/GPUK+NHS+doctorsUK/comments"
    assert request.arg("limit") == "100" and request.arg("after") is None


def test_it_turns_comments_into_posts_with_their_thread_from_the_listing_alone(
    comments: CommentsHarness,
) -> None:
    item = comment_item(3, "Dr Amira Hassan at Alice Road Surgery laughed at my mum", "throwaway_99")
    comments.api.comments.append(item)
    posts, batch = fetch_all(comments.source())
    assert batch.error is None
    [post] = posts
    assert post.source == "reddit"
    assert post.external_id.startswith("t1_")
    assert post.url.startswith("https://www.reddit.com/r/GPUK/comments/thread1/")
    assert post.url.startswith(post.extra["link_permalink"])  # the comment's own link, in its thread
    assert post.author == "u/throwaway_99" and post.author_id is not None
    assert post.created_at == item.created_at
    assert post.text == item.text
    assert post.extra == {
        "subreddit": "GPUK",
        "link_id": THREAD,
        "link_title": "My GP surgery today",
        "link_permalink": "https://www.reddit.com/r/GPUK/comments/thread1/my_gp_surgery_today/",
    }
    paths = {request.path.rstrip("/") for request in comments.server.requests}
    assert paths <= {TOKEN_PATH, "/r/GPUK+leeds/search", "/r/GPUK+NHS+doctorsUK/comments"}  # no lazy fetch


def test_a_comment_by_a_deleted_account_is_kept_without_an_author_id(comments: CommentsHarness) -> None:
    comments.api.comments.append(comment_item(1, "Amira Hassan should be struck off", "[deleted]"))
    [post], _ = fetch_all(comments.source())
    assert (post.author, post.author_id) == ("u/[deleted]", None)
    assert post.text == "Amira Hassan should be struck off"


def test_a_comment_that_cannot_be_read_is_skipped_and_the_others_kept(
    comments: CommentsHarness, caplog: pytest.LogCaptureFixture
) -> None:
    comments.api.comments += [
        comment_item(1, "Amira Hassan was lovely"),
        comment_item(2, "Amira Hassan, again"),
    ]
    comments.api.without_permalink.add(2)
    posts, batch = fetch_all(comments.source())
    assert batch.error is None and [post.text for post in posts] == ["Amira Hassan was lovely"]
    assert "source reddit: skipped item" in caplog.text and "again" not in caplog.text


def test_every_comment_is_read_whatever_it_names_for_the_matcher_to_sort(comments: CommentsHarness) -> None:
    comments.api.comments += [comment_item(1, NAMING_NO_ONE), comment_item(2, "Amira Hassan was lovely")]
    posts, _ = fetch_all(comments.source())
    assert [post.text for post in posts] == ["Amira Hassan was lovely", NAMING_NO_ONE]


def test_it_pages_back_through_comments_until_the_last_sweeps_newest(comments: CommentsHarness) -> None:
    comments.seed(250)
    source = comments.source()
    first, batch = fetch_all(source)
    comments.seed(130)
    calls = len(comments.server.calls(COMMENTS_PATH))
    second, batch = fetch_all(source, batch.state)
    assert len(first) == 250
    new = {post.external_id for post in second} - {post.external_id for post in first}
    assert len(new) == 130 and len(second) <= 131  # the new ones, and at most the newest one again
    assert len(comments.server.calls(COMMENTS_PATH)) == calls + 2
    assert batch.error is None and batch.notices == []


def test_a_sweep_cut_short_by_the_page_limit_resumes_at_its_comment_cursor(comments: CommentsHarness) -> None:
    comments.seed(250)
    source = comments.source(collector__max_pages=2)  # one search page, one comment page a batch
    batch = source.fetch({})
    assert batch.more and len(batch.posts) == 100
    [entry] = [entry for query, entry in batch.state["queries"].items() if query.startswith("comments")]
    assert entry["cursor"] == batch.posts[-1].external_id
    posts, _ = fetch_all(source, batch.state)
    assert len({post.external_id for post in [*batch.posts, *posts]}) == 250


def test_comments_lost_past_the_end_of_reddits_listing_are_reported_to_the_operator(
    comments: CommentsHarness,
) -> None:
    comments.api.listing_cap = 150
    comments.seed(10)
    source = comments.source()
    _, batch = fetch_all(source)
    comments.seed(300)  # more than the listing keeps: the oldest 160 new comments are out of reach
    posts, batch = fetch_all(source, batch.state)
    assert len(posts) == 150 and batch.error is None
    [notice] = batch.notices
    assert notice.kind == "reddit_comments_gap"
    assert "r/GPUK+NHS+doctorsUK" in notice.message and "comment_subreddits" in notice.message
    assert NAMES[0] not in notice.message  # when comments were lost, never what they said
    _, batch = fetch_all(source, batch.state)
    assert batch.notices == []  # once: the next sweep starts from the newest comment read


def test_a_listing_that_ends_at_the_last_sweeps_newest_comment_has_no_gap(comments: CommentsHarness) -> None:
    comments.seed(1)  # a new subreddit: the comment read last time is the oldest it has
    source = comments.source()
    _, batch = fetch_all(source)
    comments.seed(2)
    posts, batch = fetch_all(source, batch.state)
    assert len(posts) == 3 and batch.notices == []  # the last one read again, and nothing lost


def test_it_reads_no_comments_when_comment_subreddits_is_empty(comments: CommentsHarness) -> None:
    comments.seed(3)
    assert len(fetch_all(comments.source())[0]) == 3  # the same comments, with the subreddits set
    calls = len(comments.server.calls(COMMENTS_PATH))
    posts, batch = fetch_all(comments.source(sources__reddit__comment_subreddits=[]))
    assert posts == [] and batch.error is None
    assert len(comments.server.calls(COMMENTS_PATH)) == calls
    assert list(batch.state["queries"]) == ['"Amira Hassan" OR "Alice Road Surgery"']


def test_it_reads_no_comments_when_nobody_is_registered(comments: CommentsHarness) -> None:
    comments.seed(3)
    assert len(fetch_all(comments.source())[0]) == 3  # the same comments, with someone registered
    calls = len(comments.server.calls(COMMENTS_PATH))
    posts, _ = fetch_all(comments.source(names=[]))
    assert posts == [] and len(comments.server.calls(COMMENTS_PATH)) == calls


def test_a_rate_limit_on_the_comments_keeps_the_submissions_and_resumes_at_the_comments(
    comments: CommentsHarness,
) -> None:
    comments.api.items += more_items([], 2, NAMES[0])
    comments.seed(3)
    comments.server.fail(comments.api.rate_limited(), path=COMMENTS_PATH)
    posts, batch = fetch_all(comments.source())
    assert [post.external_id[:3] for post in posts] == ["t3_", "t3_"]
    assert batch.error is not None and batch.error.retry_after is not None
    assert "Reddit rate limit reached" in batch.error.message
    searches = len(comments.server.calls(SEARCH_PATH))
    # The next poll, after the reset (a new client: this one's PRAW would sleep the window out).
    posts, batch = fetch_all(comments.source(), batch.state)
    assert batch.error is None and len(posts) == 3
    assert len(comments.server.calls(SEARCH_PATH)) == searches  # the pass resumed at the comments


def test_an_unknown_comment_subreddit_is_a_permanent_failure_naming_the_setting(
    comments: CommentsHarness,
) -> None:
    comments.server.fail(
        Reply(404, b'{"message": "Not Found", "error": 404}'), path=COMMENTS_PATH, times=None
    )
    _, batch = fetch_all(comments.source())
    assert batch.error is not None and batch.error.permanent
    assert (
        "comment_subreddits" in batch.error.message
        and "comments of r/GPUK+NHS+doctorsUK" in batch.error.message
    )


def test_only_comments_naming_someone_are_stored_once_and_no_other_comment_text_is_logged(
    settings: Settings,
    server: FakeServer,
    session: Session,
    alice: Tenancy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    api = FakeReddit(server)
    api.comments += more_items([], 2, "Dr Amira Hassan of Alice Road Surgery in Leeds")
    api.comments += [Item(100 + n, recent(5), f"{NAMING_NO_ONE} ({n})", "someone") for n in range(5)]
    overrides = {**reddit_at(server), "collector__retry_attempts": 1, "collector__retry_wait_seconds": 0}
    runtime = Runtime(settings.with_overrides(**overrides))
    caplog.set_level(logging.DEBUG)
    [report] = collect_once(runtime, source="reddit")
    assert (report.posts_read, report.store.stored, report.store.unmatched, report.error) == (7, 2, 5, None)
    api.comments += more_items(api.comments, 1, "Dr Amira Hassan of Alice Road Surgery in Leeds")
    [report] = collect_once(runtime, source="reddit")
    assert report.store.stored == 1  # a second sweep stores nothing twice
    mentions = session.scalars(select(Mention)).all()
    assert len(mentions) == 3 and all(mention.external_id.startswith("t1_") for mention in mentions)
    assert NAMING_NO_ONE not in caplog.text
    runtime.close()
