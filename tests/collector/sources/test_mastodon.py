from __future__ import annotations

import logging
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest

from collector.matching import Entity, Matcher
from collector.sources.base import Context
from collector.sources.mastodon import MastodonSource, is_newer
from tests.collector.fakes.corpus import Item, more_items, recent
from tests.collector.fakes.faults import SourceContract, fetch_all, source_settings
from tests.collector.fakes.mastodon import TOKEN, FakeMastodon
from tests.collector.fakes.server import FakeServer, Reply, json_reply

NAME = "Amira Hassan"
TAG_PATH = "/api/v1/timelines/tag/NHS"
SEARCH_PATH = "/api/v2/search"


class Harness:
    data_path = TAG_PATH
    auth_path = TAG_PATH
    page_size = FakeMastodon.page_size

    def __init__(self, server: FakeServer, token: str = TOKEN, search: bool = False) -> None:
        self.server = server
        self.api = FakeMastodon(server)
        self.token = token
        self.search = search
        if search:
            self.data_path = self.auth_path = SEARCH_PATH

    def seed(self, count: int) -> None:
        self.api.items += more_items(self.api.items, count, NAME)

    def source(self) -> MastodonSource:
        settings = source_settings(
            sources__mastodon__enabled=True,
            sources__mastodon__instances=[self.server.base_url],
            sources__mastodon__access_token=self.token,
            sources__mastodon__hashtags=[] if self.search else ["NHS"],
            sources__mastodon__search=self.search,
        )
        return MastodonSource(Context(settings=settings, names=[NAME]))


@pytest.fixture
def harness(server: FakeServer) -> Harness:
    return Harness(server)


class TestContract(SourceContract):
    """Hashtag timelines."""


class TestSearchContract(SourceContract):
    """Full-text search of the registered names."""

    @pytest.fixture
    def harness(self, server: FakeServer) -> Harness:
        return Harness(server, search=True)


def test_search_pages_back_only_as_far_as_the_last_sweep(server: FakeServer) -> None:
    harness = Harness(server, search=True)
    harness.seed(85)
    first, batch = fetch_all(harness.source())
    assert len(first) == 85 and len(server.calls(SEARCH_PATH)) == 3
    harness.seed(3)
    before = len(server.calls(SEARCH_PATH))
    posts, batch = fetch_all(harness.source(), batch.state)
    assert batch.error is None
    assert len(posts) == 3
    assert len(server.calls(SEARCH_PATH)) == before + 1
    assert server.calls(SEARCH_PATH)[-1].arg("q") == f'"{NAME}"'


def two_tags_and_search(server: FakeServer) -> MastodonSource:
    """#GPUK first, a hashtag the fake instance has never seen, then #NHS and the name search."""
    settings = source_settings(
        sources__mastodon__enabled=True,
        sources__mastodon__instances=[server.base_url],
        sources__mastodon__access_token=TOKEN,
        sources__mastodon__hashtags=["GPUK", "NHS"],
        sources__mastodon__search=True,
    )
    return MastodonSource(Context(settings=settings, names=[NAME]))


def test_a_hashtag_the_instance_has_never_seen_is_an_empty_timeline_not_a_failure(
    harness: Harness,
) -> None:
    source = two_tags_and_search(harness.server)
    state: dict = {}
    for _poll in range(2):  # and on the next poll too: nothing stays stuck on #GPUK
        seen = len(harness.api.items)
        harness.seed(3)
        posts, batch = fetch_all(source, state)
        state = batch.state
        assert batch.error is None
        assert {post.text for post in posts} == {item.text + " #NHS" for item in harness.api.items[seen:]}
    assert len(harness.server.calls("/api/v1/timelines/tag/GPUK")) == 2
    assert len(harness.server.calls(SEARCH_PATH)) == 2


def test_a_404_without_mastodons_json_error_is_a_wrong_instance_url_and_the_rest_is_still_read(
    harness: Harness,
) -> None:
    harness.seed(3)
    not_found = Reply(404, b"<html>Not Found</html>")  # not a Mastodon server at this URL
    harness.server.fail(not_found, path="/api/v1/timelines/tag/GPUK")
    harness.server.fail(not_found, path="/api/v1/instance/?")
    posts, batch = fetch_all(two_tags_and_search(harness.server))
    assert batch.error is not None and batch.error.permanent
    assert "check the instance URL" in batch.error.message and "#GPUK" in batch.error.message
    assert len({post.external_id for post in posts}) == 3  # #NHS and the search were still read


def test_it_turns_statuses_into_posts_with_plain_text(harness: Harness) -> None:
    item = Item(
        1, recent(3), f"Dr {NAME} & the receptionist <were> awful", "carol", reply_to="dramira@doctors.social"
    )
    harness.api.items.append(item)
    posts, batch = fetch_all(harness.source())
    assert batch.error is None
    [post] = posts
    assert post.source == "mastodon"
    assert post.external_id.startswith("https://mastodon.example/users/carol/statuses/")
    assert post.author.startswith("@carol@")
    assert post.text == f"{item.text} #NHS"
    assert post.created_at == item.created_at
    assert post.in_reply_to == "@dramira@doctors.social"


def test_it_reads_only_new_statuses_on_the_next_poll(harness: Harness) -> None:
    harness.seed(3)
    source = harness.source()
    first, batch = fetch_all(source)
    harness.seed(2)
    second, _ = fetch_all(source, batch.state)
    assert len(first) == 3 and len(second) == 2
    assert harness.server.calls(TAG_PATH)[-1].arg("since_id") == str(harness.api.items[2].mastodon_id())


def test_old_statuses_are_not_read_the_first_time(harness: Harness) -> None:
    harness.seed(1)
    harness.api.items.append(Item(99, recent(60 * 30), f"{NAME} long ago", "olduser"))
    posts, _ = fetch_all(harness.source())
    assert [post.text for post in posts] == [harness.api.items[0].text + " #NHS"]


def test_hashtags_are_read_without_a_token(server: FakeServer) -> None:
    harness = Harness(server, token="")
    harness.seed(2)
    posts, batch = fetch_all(harness.source())
    assert batch.error is None and len(posts) == 2
    assert "authorization" not in server.calls(TAG_PATH)[-1].headers


@pytest.mark.parametrize(
    ("acct", "in_reply_to"),
    [
        ("dramira@doctors.social", "@dramira@doctors.social"),
        ("drpriya", "@drpriya@{instance}"),
    ],
    ids=["an account on another server", "an account on the instance read"],
)
def test_a_reply_names_the_account_replied_to_with_its_domain(
    harness: Harness, acct: str, in_reply_to: str
) -> None:
    harness.api.items.append(Item(1, recent(3), "Struck off, I hope", "carol", reply_to=acct))
    [post], _ = fetch_all(harness.source())
    instance = urlsplit(harness.server.base_url).hostname
    assert post.in_reply_to == in_reply_to.format(instance=instance)


def test_a_reply_to_a_local_account_is_not_taken_for_an_x_handle_of_the_same_name(
    harness: Harness,
) -> None:
    doctor = Entity("doctor", 2, "1000002", ("Priya Shah",), ("@drpriya",), town="Leeds")
    harness.api.items.append(Item(1, recent(3), "Struck off, I hope", "carol", reply_to="drpriya"))
    [post], _ = fetch_all(harness.source())
    assert Matcher.from_entities([doctor]).match(post) == []


@pytest.mark.parametrize("answer", [None, {"error": "Something went wrong"}], ids=["null", "an object"])
def test_an_answer_that_is_not_a_list_of_statuses_fails_the_query_and_a_good_one_recovers(
    harness: Harness, answer: object
) -> None:
    harness.seed(3)
    harness.server.fail(json_reply(answer), path=TAG_PATH, times=None)
    posts, batch = fetch_all(harness.source())
    assert posts == [] and batch.error is not None and batch.error.transient
    assert "something other than a list of statuses" in batch.error.message
    assert (
        "(query " in batch.error.message
        and "since" not in batch.state["queries"][harness.source().queries[0]]
    )
    harness.server.clear_faults()
    posts, batch = fetch_all(harness.source(), batch.state)
    if not posts:  # the failed query waits for the next pass
        posts, batch = fetch_all(harness.source(), batch.state)
    assert batch.error is None and len(posts) == 3


@pytest.mark.parametrize(
    "sent", [{"account": None}, {"created_at": None}, {"created_at": "yesterday"}],
    ids=["no account", "no date", "a date that is no time"],
)  # fmt: skip
def test_a_status_that_cannot_be_read_is_skipped_by_name_and_the_others_kept(
    harness: Harness, caplog: pytest.LogCaptureFixture, sent: dict[str, object]
) -> None:
    harness.seed(3)
    harness.api.sent[2] = sent
    with caplog.at_level(logging.ERROR):
        posts, batch = fetch_all(harness.source())
    assert batch.error is None and len(posts) == 2
    assert "source mastodon: skipped item" in caplog.text
    [entry] = batch.state["queries"].values()
    assert entry["since"] == str(harness.api.items[-1].mastodon_id())  # the sweep moved on


@pytest.mark.parametrize(
    ("status_id", "since", "newer"),
    [
        ("117746460327936003", "117746460327936002", True),
        (1000, "999", True),  # Mastodon.py may hand ids over as numbers
        ("117746460327936002", "117746460327936003", False),
        ("01HGW2N7EBXS3W1A9Y8Q5T6V7Z", "01HGW2N7EBXS3W1A9Y8Q5T6V7A", True),
        ("AcB2yRkJ9b1vCsL3Wa", "AcB2yRkJ9b1vCsL3Wz", False),
    ],
    ids=["mastodon", "a longer number", "mastodon, older", "a gotosocial ulid", "an akkoma flake id, older"],
)
def test_status_ids_that_are_not_numbers_are_ordered_like_numbers_on_instances_that_are_not_mastodon(
    status_id: object, since: str, newer: bool
) -> None:
    assert is_newer({"id": status_id}, since, datetime.now(UTC)) is newer
