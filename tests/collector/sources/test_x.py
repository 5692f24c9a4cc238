from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from collector.matching import Entity, Matcher, load_entities
from collector.post import Post
from collector.sources.base import Context
from collector.sources.x import XSource, next_month, snowflake_time
from collector.store import StoreReport, store_matched
from tests.collector.fakes.corpus import Item, more_items, recent
from tests.collector.fakes.faults import SourceContract, fetch_all, source_settings
from tests.collector.fakes.server import FakeServer, Reply, Request
from tests.collector.fakes.x import PATH, TEXT_LIMIT, TOKEN, FakeX
from tests.conftest import Tenancy
from vigil.models import Mention

NAME = "Amira Hassan"
DOCTOR = Entity("doctor", 1, "1000001", (NAME,), ("@dr_amira",), town="Leeds")


class Harness:
    data_path = PATH
    auth_path = PATH
    page_size = 10

    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.api = FakeX(server)
        self.overrides: dict[str, object] = {}

    def seed(self, count: int) -> None:
        self.api.items += more_items(self.api.items, count, NAME)

    def source(self, *entities: Entity) -> XSource:
        settings = source_settings(
            sources__x__enabled=True,
            sources__x__base_url=self.server.base_url,
            sources__x__bearer_token=TOKEN,
            sources__x__max_results=self.page_size,
            **self.overrides,
        )
        return XSource(Context(settings=settings, entities=entities or (DOCTOR,)))


@pytest.fixture
def harness(server: FakeServer) -> Harness:
    return Harness(server)


class TestContract(SourceContract):
    pass


def test_tweepy_is_pointed_at_the_base_url_and_asks_for_the_fields_it_needs(harness: Harness) -> None:
    harness.seed(1)
    fetch_all(harness.source())
    [request] = harness.server.calls(PATH)  # tweepy's hard-coded api.twitter.com went to the fake
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["user-agent"].startswith("Python/")
    assert set(request.arg("expansions", "").split(",")) == {"author_id", "in_reply_to_user_id"}
    assert {"created_at", "conversation_id", "lang", "note_tweet"} <= set(
        request.arg("tweet.fields", "").split(",")
    )
    assert NAME in (request.arg("query") or "") and "-is:retweet" in (request.arg("query") or "")


def test_tweets_become_posts_with_their_author_and_the_account_replied_to(harness: Harness) -> None:
    item = Item(1, recent(3), f"@dr_amira {NAME} cancelled again", "leedsmum", reply_to="dr_amira")
    harness.api.items.append(item)
    [post], batch = fetch_all(harness.source())
    assert batch.error is None
    assert post.source == "x" and post.external_id == str(item.snowflake())
    assert post.url == f"https://x.com/leedsmum/status/{item.snowflake()}"
    assert post.author == "@leedsmum" and post.author_id
    assert post.created_at == item.created_at and post.lang == "en"
    assert post.conversation_id == str(item.snowflake())
    assert post.in_reply_to == "@dr_amira"
    assert post.extra["referenced_tweets"] == [{"type": "replied_to", "id": "1460323737035677698"}]


def test_the_first_pages_newest_id_becomes_the_next_since_id(harness: Harness) -> None:
    harness.seed(25)
    source = harness.source()
    _, batch = fetch_all(source)
    calls = harness.server.calls(PATH)
    assert [c.arg("since_id") for c in calls] == [None, None, None]
    assert calls[1].arg("next_token") and calls[1].arg("start_time") == calls[0].arg("start_time")
    [state] = batch.state["queries"].values()
    assert state == {"since": str(harness.api.items[-1].snowflake())}
    harness.seed(3)
    posts, _ = fetch_all(source, batch.state)
    assert len(posts) == 3
    assert harness.server.calls(PATH)[-1].arg("since_id") == state["since"]


def test_the_first_poll_reads_back_only_the_backfill_window(harness: Harness) -> None:
    harness.api.items.append(Item(1, recent(60 * 30), f"{NAME} two days ago", "old"))
    harness.overrides = {"collector__backfill_hours": 24}
    posts, _ = fetch_all(harness.source())
    start = datetime.fromisoformat(
        (harness.server.calls(PATH)[0].arg("start_time") or "").replace("Z", "+00:00")
    )
    assert posts == []
    assert abs(start - (datetime.now(UTC) - timedelta(hours=24))) < timedelta(minutes=1)


def test_a_new_query_starts_from_the_last_pass_not_from_seven_days_ago(harness: Harness) -> None:
    harness.seed(2)
    _, batch = fetch_all(harness.source())
    newcomer = Entity("doctor", 2, "1000002", ("Benedict Osei",), ())
    fetch_all(harness.source(DOCTOR, newcomer), batch.state)
    last = harness.server.calls(PATH)[-1]
    assert "Benedict Osei" in (last.arg("query") or "") and last.arg("since_id") is None
    assert last.arg("start_time") == datetime.fromisoformat(batch.state["last_pass"]).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


def test_a_since_id_older_than_the_search_window_is_replaced_by_a_start_time(harness: Harness) -> None:
    stale = Item(1, datetime.now(UTC) - timedelta(days=8), "old", "old").snowflake()
    assert snowflake_time(str(stale)) < datetime.now(UTC) - timedelta(days=7)
    query = harness.source().queries[0]
    fetch_all(harness.source(), {"queries": {query: {"since": str(stale)}}})
    request = harness.server.calls(PATH)[-1]
    assert request.arg("since_id") is None and request.arg("start_time")


def test_the_budget_warns_at_80_percent_once_and_stops_reading_at_100(harness: Harness) -> None:
    harness.overrides = {"sources__x__monthly_read_budget": 50}
    harness.seed(41)
    _, batch = fetch_all(harness.source())
    assert batch.state["usage"]["reads"] == 41
    assert [n.kind for n in batch.notices] == ["x_budget_warning"]
    assert "82%" in batch.notices[0].message and "$0.2" in batch.notices[0].message
    harness.seed(30)
    calls = len(harness.server.calls(PATH))
    posts, batch = fetch_all(harness.source(), batch.state)
    assert [n.kind for n in batch.notices] == ["x_budget_spent"]
    assert (
        batch.state["usage"]["reads"] == 51 and len(posts) == 10
    )  # the last page asked for only what was left
    assert batch.error is None
    posts, batch = fetch_all(harness.source(), batch.state)
    assert posts == [] and batch.notices == []  # stopped, and told only once
    assert len(harness.server.calls(PATH)) == calls + 1


@pytest.mark.parametrize(
    ("fault", "permanent", "resumes"),
    [
        ("rate_limited", False, "within the hour"),
        ("usage_capped", True, "next month"),
    ],
    ids=["a rate limit", "the monthly usage cap"],
)
def test_x_s_monthly_usage_cap_stops_reading_until_next_month_a_rate_limit_only_until_its_reset(
    harness: Harness, fault: str, permanent: bool, resumes: str
) -> None:
    harness.seed(3)
    harness.server.fail(getattr(harness.api, fault)(), path=PATH, times=None)
    posts, batch = fetch_all(harness.source())
    error = batch.error
    assert posts == [] and error is not None and error.retry_after is not None
    assert error.permanent is permanent  # permanent: the operator is told at once
    assert len(harness.server.calls(PATH)) == 1  # neither is retried
    now = datetime.now(UTC)
    if resumes == "next month":
        assert error.retry_after == next_month(now)
        assert "monthly usage cap" in error.message and f"{next_month(now):%d %B %Y}" in error.message
    else:
        assert now < error.retry_after < now + timedelta(hours=1)


@pytest.mark.parametrize(
    ("now", "resume"),
    [
        (datetime(2026, 12, 7, 20, 15, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
        (datetime(2026, 1, 31, 23, 59, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)),
        (datetime(2026, 11, 1, 0, 0, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)),
    ],
)
def test_the_usage_cap_renews_at_midnight_utc_on_the_first_of_next_month(
    now: datetime, resume: datetime
) -> None:
    assert next_month(now) == resume


def test_a_new_month_starts_a_new_budget(harness: Harness) -> None:
    harness.overrides = {"sources__x__monthly_read_budget": 20}
    harness.seed(5)
    spent = {"usage": {"month": "2020-01", "reads": 20, "warned": True, "stopped": True}}
    posts, batch = fetch_all(harness.source(), spent)
    assert len(posts) == 5 and batch.state["usage"]["month"] == datetime.now(UTC).strftime("%Y-%m")
    assert batch.state["usage"]["reads"] == 5


def test_the_bearer_token_is_never_logged(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    harness.seed(1)
    with caplog.at_level(logging.DEBUG):
        fetch_all(harness.source())
    assert TOKEN not in caplog.text


def test_a_repacked_query_of_known_terms_carries_their_since_id(harness: Harness) -> None:
    harness.seed(2)
    _, batch = fetch_all(harness.source())
    [(old_query, entry)] = batch.state["queries"].items()
    harness.overrides = {"sources__x__exclude_retweets": False}  # the same terms, another query
    _, batch = fetch_all(harness.source(), batch.state)
    last = harness.server.calls(PATH)[-1]
    assert last.arg("query") != old_query
    assert last.arg("since_id") == entry["since"] and last.arg("start_time") is None
    assert old_query not in batch.state["queries"]


def store(session: Session, posts: list[Post]) -> StoreReport:
    """Match the posts against the register and store them, as the runner does."""
    matcher = Matcher.from_entities(load_entities(session))
    report = store_matched(session, [(post, matcher.match(post)) for post in posts])
    session.commit()
    return report


def test_an_edit_keeps_the_original_posts_id_and_links_to_the_version_read(harness: Harness) -> None:
    original = Item(1, recent(20), f"{NAME} in Leeds was rude to my mum", "leedsmum")
    harness.api.items.append(original)
    edit = harness.api.edit(original, f"{NAME} in Leeds was rude to my mum, and laughed at her")
    posts, _ = fetch_all(harness.source())
    assert [(post.external_id, post.url, post.text) for post in posts] == [
        (str(original.snowflake()), f"https://x.com/leedsmum/status/{edit.snowflake()}", edit.text),
        (str(original.snowflake()), f"https://x.com/leedsmum/status/{original.snowflake()}", original.text),
    ]


@pytest.mark.parametrize("edit_read_later", [False, True], ids=["in the same page", "on a later poll"])
def test_an_edited_post_is_stored_once(
    harness: Harness, session: Session, alice: Tenancy, edit_read_later: bool
) -> None:
    original = Item(1, recent(20), f"{NAME} in Leeds was rude to my mum", "leedsmum")
    harness.api.items.append(original)
    earlier: list[Post] = []
    state: dict[str, object] = {}
    if edit_read_later:
        earlier, batch = fetch_all(harness.source())
        store(session, earlier)
        state = batch.state
    harness.api.edit(original, f"{NAME} in Leeds was rude to my mum, and laughed at her")
    posts, _ = fetch_all(harness.source(), state)
    report = store(session, posts)
    assert len(earlier + posts) == 2 and report.duplicates == 1
    [mention] = session.scalars(select(Mention)).all()
    assert mention.external_id == str(original.snowflake())


def test_a_long_post_is_read_whole_so_a_name_after_280_characters_is_matched(harness: Harness) -> None:
    opening = "Rang the surgery at 8am sharp, was 23rd in the queue, then cut off after 40 minutes. " * 4
    text = f"{opening}And then Dr {NAME} in Leeds told my mum she was wasting everyone's time."
    assert text.index(NAME) > TEXT_LIMIT  # X's ``text`` stops before the name
    harness.api.items.append(Item(1, recent(3), text, "leedsmum"))
    [post], _ = fetch_all(harness.source())
    assert post.text == text
    assert [match.doctor_id for match in Matcher.from_entities([DOCTOR]).match(post)] == [DOCTOR.id]


def test_a_next_token_that_repeats_fails_the_poll_instead_of_billing_the_same_page_all_month(
    harness: Harness,
) -> None:
    harness.seed(25)
    harness.overrides = {"sources__x__monthly_read_budget": 1000}
    search = harness.api.search

    def same_token(request: Request) -> Reply:
        reply = search(request)
        if "next_token" in reply.body["meta"]:
            reply.body["meta"]["next_token"] = "MTA="  # always the second page
        return reply

    harness.server.routes = [("GET", re.compile(f"^{PATH}$"), same_token)]
    posts, batch = fetch_all(harness.source())
    assert batch.error is not None and "paging does not move on" in batch.error.message
    assert len(harness.server.calls(PATH)) == 2 and batch.state["usage"]["reads"] == 20
    assert len({post.external_id for post in posts}) == 20


@pytest.mark.parametrize(
    ("sent", "created_at", "text"),
    [
        ({"created_at": None}, "from its id", "as sent"),
        ({"text": None}, "as sent", ""),
    ],
    ids=["no created_at", "text null"],
)
def test_a_post_with_a_field_missing_is_stored_with_what_x_says_elsewhere(
    harness: Harness, sent: dict[str, object], created_at: str, text: str
) -> None:
    harness.seed(3)
    harness.api.sent[2] = sent
    posts, batch = fetch_all(harness.source())
    assert batch.error is None and len(posts) == 3
    item = harness.api.items[1]
    [post] = [post for post in posts if post.external_id == str(item.snowflake())]
    assert post.created_at == (
        snowflake_time(str(item.snowflake())) if created_at == "from its id" else item.created_at
    )
    assert post.text == (item.text if text == "as sent" else text)
