from __future__ import annotations

from collections.abc import Iterator

import pytest

from collector.sources.base import Context
from collector.sources.bluesky import BlueskySource, forget_sessions
from tests.collector.fakes.bluesky import CREATE_SESSION, HANDLE, PASSWORD, SEARCH, FakeBluesky, did_of
from tests.collector.fakes.corpus import Item, more_items, recent
from tests.collector.fakes.faults import SourceContract, fetch_all
from tests.collector.fakes.faults import source_settings as settings_for
from tests.collector.fakes.server import FakeServer

NAME = "Amira Hassan"


class Harness:
    data_path = SEARCH
    auth_path = CREATE_SESSION
    page_size = FakeBluesky.page_size

    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.api = FakeBluesky(server)

    def seed(self, count: int) -> None:
        self.api.items += more_items(self.api.items, count, NAME)

    def source(self, **overrides: object) -> BlueskySource:
        settings = settings_for(
            sources__bluesky__enabled=True,
            sources__bluesky__base_url=self.server.base_url,
            sources__bluesky__handle=HANDLE,
            sources__bluesky__app_password=PASSWORD,
            **overrides,
        )
        return BlueskySource(Context(settings=settings, names=[NAME]))


@pytest.fixture
def harness(server: FakeServer) -> Iterator[Harness]:
    forget_sessions()  # no logged-in client from another test
    yield Harness(server)
    forget_sessions()


class TestContract(SourceContract):
    pass


def test_it_turns_post_views_into_posts(harness: Harness) -> None:
    item = Item(1, recent(5), f"Dr {NAME} never listens", "angrydad", reply_to="dramira")
    harness.api.items.append(item)
    posts, batch = fetch_all(harness.source())
    assert batch.error is None
    [post] = posts
    assert post.source == "bluesky"
    assert post.external_id.startswith("at://did:plc:") and "/app.bsky.feed.post/" in post.external_id
    assert post.url.startswith("https://bsky.app/profile/angrydad.bsky.social/post/")
    assert post.author == "@angrydad.bsky.social"
    assert post.created_at == item.created_at
    assert post.text == item.text and post.lang == "en"
    assert post.in_reply_to == "@dramira.bsky.social"


@pytest.mark.parametrize(
    ("unverified", "author", "replied_to"),
    [
        (set(), "angrydad.bsky.social", "dramira.bsky.social"),
        ({"angrydad"}, did_of("angrydad"), "dramira.bsky.social"),
        ({"angrydad", "dramira"}, did_of("angrydad"), did_of("dramira")),
    ],
    ids=["handles that verify", "the author's handle is invalid", "both handles are invalid"],
)
def test_an_account_whose_handle_no_longer_verifies_is_named_by_its_did(
    harness: Harness, unverified: set[str], author: str, replied_to: str
) -> None:
    harness.api.unverified = unverified
    harness.api.items.append(Item(1, recent(5), f"Dr {NAME} never listens", "angrydad", reply_to="dramira"))
    harness.api.items.append(Item(2, recent(4), f"{NAME} again", "otherdad"))
    posts, batch = fetch_all(harness.source())
    assert batch.error is None
    [post] = [p for p in posts if p.text.startswith("Dr")]
    [other] = [p for p in posts if p is not post]
    rkey = post.external_id.rsplit("/", 1)[-1]
    assert post.url == f"https://bsky.app/profile/{author}/post/{rkey}"  # a link that opens
    assert post.author == f"@{author}" and post.in_reply_to == f"@{replied_to}"
    assert other.author == "@otherdad.bsky.social"


@pytest.mark.parametrize(
    "created_at",
    ["yesterday", "0000-01-01T00:00:00Z", "2099-01-01T00:00:00Z"],
    ids=["not a time", "year 0", "years ahead"],
)
def test_a_post_whose_client_wrote_a_created_at_that_is_no_time_or_ahead_is_kept_as_indexed(
    harness: Harness, created_at: str
) -> None:
    harness.seed(3)
    harness.api.records[2] = {"createdAt": created_at}  # createdAt is whatever the author's client wrote
    posts, batch = fetch_all(harness.source())
    assert batch.error is None and len(posts) == 3
    [odd] = [post for post in posts if post.text.startswith("Post 2:")]
    assert odd.created_at == harness.api.items[1].created_at  # its indexedAt
    assert batch.state["queries"][f'"{NAME}"']["since"] == harness.api.items[-1].created_at.isoformat()


def test_it_asks_for_the_latest_posts_since_the_last_sweep(harness: Harness) -> None:
    harness.seed(3)
    source = harness.source()
    first, batch = fetch_all(source)
    harness.seed(2)
    second, _ = fetch_all(source, batch.state)
    request = harness.server.calls(SEARCH)[-1]
    assert request.headers["user-agent"].startswith("Vigil/")
    assert request.arg("sort") == "latest" and request.arg("q") == f'"{NAME}"'
    assert request.arg("since")
    assert len(first) == 3
    assert len({p.external_id for p in second} - {p.external_id for p in first}) == 2


def test_it_logs_in_once_and_reuses_the_session_across_processes(harness: Harness) -> None:
    harness.seed(2)
    _, batch = fetch_all(harness.source())
    assert harness.api.sessions_created == 1
    assert batch.state["session"]["for"] == f"{HANDLE}@{harness.server.base_url}"
    forget_sessions()  # a new process: only the checkpoint remains
    _, batch = fetch_all(harness.source(), batch.state)
    assert batch.error is None
    assert harness.api.sessions_created == 1


def test_it_logs_in_again_when_the_saved_session_can_no_longer_be_refreshed(harness: Harness) -> None:
    harness.api.access_lifetime = 60  # already inside the SDK's 15-minute refresh margin
    _, batch = fetch_all(harness.source())
    harness.api.valid_refresh.clear()  # the refresh token was revoked
    forget_sessions()
    _, batch = fetch_all(harness.source(), batch.state)
    assert batch.error is None, batch.error and batch.error.message
    assert harness.api.sessions_created == 2


def test_the_app_password_never_appears_in_the_checkpoint(harness: Harness) -> None:
    _, batch = fetch_all(harness.source())
    assert PASSWORD not in str(batch.state)
