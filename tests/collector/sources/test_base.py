from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from collector.post import Post
from collector.sources.base import Page, SourceError, html_to_text, parse_time, retrying, sweep
from tests.collector.fakes.faults import source_settings
from vigil.scheduler import STOPPING

START = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def post(n: int) -> Post:
    return Post("test", str(n), f"https://example.com/{n}", "a", START + timedelta(minutes=n), "t")


class Listing:
    """Newest-first pages of three over ids 1..N; ``since`` filters, the cursor is an offset."""

    def __init__(self, newest: int, fail_at: int | None = None) -> None:
        self.newest = newest
        self.fail_at = fail_at
        self.calls: list[tuple[str, str | None, str | None]] = []

    def __call__(self, query: str, since: str | None, cursor: str | None, start: datetime) -> Page:
        self.calls.append((query, since, cursor))
        if self.fail_at is not None and len(self.calls) == self.fail_at:
            raise SourceError("boom")
        ids = [n for n in range(self.newest, 0, -1) if since is None or n > int(since)]
        offset = int(cursor or 0)
        page = ids[offset : offset + 3]
        more = offset + 3 < len(ids)
        return Page(
            [post(n) for n in page],
            cursor=str(offset + 3) if more else None,
            newest=str(page[0]) if page else None,
        )


def test_a_sweep_reads_every_page_then_moves_the_marker_to_the_newest_post() -> None:
    listing = Listing(newest=7)
    batch = sweep(["q"], {}, listing, max_pages=10, first_start=START)
    assert [p.external_id for p in batch.posts] == ["7", "6", "5", "4", "3", "2", "1"]
    assert batch.state["queries"] == {"q": {"since": "7"}} and not batch.more and batch.error is None
    assert "pass" not in batch.state and batch.state["last_pass"]
    listing.newest = 9
    again = sweep(["q"], batch.state, listing, max_pages=10, first_start=START)
    assert [p.external_id for p in again.posts] == ["9", "8"]
    assert listing.calls[-1] == ("q", "7", None)


def test_a_sweep_cut_short_by_the_page_limit_resumes_with_the_same_marker() -> None:
    listing = Listing(newest=7)
    first = sweep(["q"], {"queries": {"q": {"since": "0"}}}, listing, max_pages=1, first_start=START)
    assert first.more and first.state["queries"]["q"] == {"since": "0", "cursor": "3", "newest": "7"}
    listing.newest = 9  # new posts arrive mid-sweep: the next sweep will get them
    rest = sweep(["q"], first.state, listing, max_pages=10, first_start=START)
    assert listing.calls[-1][1] == "0"  # the same since while following the cursor
    assert rest.state["queries"]["q"] == {"since": "7"}


def test_an_error_keeps_the_pages_read_before_it_and_the_place_to_resume() -> None:
    listing = Listing(newest=7, fail_at=2)
    batch = sweep(["q"], {}, listing, max_pages=10, first_start=START)
    assert batch.error is not None and [p.external_id for p in batch.posts] == ["7", "6", "5"]
    assert batch.state["queries"]["q"]["cursor"] == "3"
    listing.fail_at = None
    rest = sweep(["q"], batch.state, listing, max_pages=10, first_start=START)
    if not rest.posts:  # the failed query was skipped for the rest of its pass; the next one resumes it
        rest = sweep(["q"], rest.state, listing, max_pages=10, first_start=START)
    assert [p.external_id for p in rest.posts] == ["4", "3", "2", "1"]


class Refusing(Listing):
    """A listing whose query ``bad`` always fails with ``error``."""

    def __init__(self, error: SourceError) -> None:
        super().__init__(newest=2)
        self.error = error

    def __call__(self, query: str, since: str | None, cursor: str | None, start: datetime) -> Page:
        if query == "bad":
            self.calls.append((query, since, cursor))
            raise self.error
        return super().__call__(query, since, cursor, start)


REFUSED = SourceError("no such hashtag", permanent=True)
TRANSIENT = SourceError("503 after retries")
RATE_LIMITED = SourceError("rate limit", retry_after=START + timedelta(minutes=15))


@pytest.mark.parametrize(
    ("error", "first_batch", "second_batch"),
    [
        # refused: skipped, the queries after it read in the same batch, the pass completes
        (REFUSED, ["a", "bad", "c"], ["a", "bad", "c"]),
        # transient: skipped, the batch stops, the next poll carries on after it
        (TRANSIENT, ["a", "bad"], ["c"]),
        # rate limit: covers every query, so the batch stops and the next poll resumes at it
        (RATE_LIMITED, ["a", "bad"], ["bad"]),
    ],
    ids=["refused", "transient", "rate limited"],
)
def test_a_failing_query_never_blocks_the_queries_after_it_except_for_a_rate_limit(
    error: SourceError, first_batch: list[str], second_batch: list[str]
) -> None:
    listing = Refusing(error)
    batch = sweep(["a", "bad", "c"], {}, listing, max_pages=10, first_start=START)
    assert [query for query, _, _ in listing.calls] == first_batch
    assert batch.error is not None and batch.error.permanent == error.permanent
    assert batch.error.retry_after == error.retry_after
    listing.calls.clear()
    sweep(["a", "bad", "c"], batch.state, listing, max_pages=10, first_start=START)
    assert [query for query, _, _ in listing.calls] == second_batch


def test_a_refused_query_is_reported_by_name_and_keeps_its_marker_for_the_next_pass() -> None:
    listing = Refusing(REFUSED)
    state = {"queries": {"bad": {"since": "5"}}}
    batch = sweep(["a", "bad", "c"], state, listing, max_pages=10, first_start=START)
    assert [p.external_id for p in batch.posts] == ["2", "1", "2", "1"]  # a's and c's
    assert batch.error is not None and batch.error.message == "no such hashtag (query bad)"
    assert batch.state["queries"]["bad"] == {"since": "5"} and "last_pass" in batch.state
    sweep(["a", "bad", "c"], batch.state, listing, max_pages=10, first_start=START)
    assert ("bad", "5", None) in listing.calls[-3:]  # tried again from where it was


def test_several_refused_queries_are_one_failed_poll_that_counts_them() -> None:
    def refuse_all(query: str, since: str | None, cursor: str | None, start: datetime) -> Page:
        raise SourceError(f"refused {query}", permanent=True)

    batch = sweep(["x", "y", "z"], {}, refuse_all, max_pages=10, first_start=START)
    assert batch.error is not None and batch.error.permanent
    assert batch.error.message == "refused x (query x); 2 more queries failed"


def test_queries_late_in_the_list_are_not_starved_by_the_page_limit() -> None:
    listing = Listing(newest=2)
    state: dict = {}
    seen: list[str] = []
    for _ in range(3):
        batch = sweep(["a", "b", "c"], state, listing, max_pages=1, first_start=START)
        state = batch.state
        seen.append(listing.calls[-1][0])
    assert seen == ["a", "b", "c"] and not batch.more and "last_pass" in state


def test_a_query_added_later_starts_from_the_last_complete_pass() -> None:
    starts: list[datetime] = []

    def fetch(query: str, since: str | None, cursor: str | None, start: datetime) -> Page:
        starts.append(start)
        return Page([])

    first = sweep(["a"], {}, fetch, max_pages=5, first_start=START)
    sweep(["a", "new"], first.state, fetch, max_pages=5, first_start=START)
    assert starts[0] == START and starts[-1] == parse_time(first.state["last_pass"]) > START


def test_queries_no_longer_asked_are_forgotten() -> None:
    batch = sweep(["a"], {"queries": {"gone": {"since": "5"}}}, Listing(1), max_pages=5, first_start=START)
    assert list(batch.state["queries"]) == ["a"]


class Looping(Listing):
    """A listing whose paging goes wrong from its second page on, in one of three ways."""

    def __init__(self, how: str) -> None:
        super().__init__(newest=30)
        self.how = how

    def __call__(self, query: str, since: str | None, cursor: str | None, start: datetime) -> Page:
        if self.how == "ignores the cursor":
            page = super().__call__(query, since, None, start)
            return Page(page.posts, cursor=str(int(cursor or 0) + 3), newest=page.newest)
        page = super().__call__(query, since, cursor, start)
        if cursor is not None:
            page.cursor = cursor if self.how == "repeats its cursor" else "3" if cursor == "6" else "6"
        return page


@pytest.mark.parametrize(
    ("how", "cursor", "pages"),
    [
        ("repeats its cursor", None, 2),
        ("repeats its cursor", "3", 1),  # resumed from the checkpoint's cursor
        ("cycles back", None, 3),
        ("ignores the cursor", None, 2),
    ],
    ids=["repeats its cursor", "repeats the checkpoint's cursor", "cycles back", "ignores the cursor"],
)
def test_paging_that_leads_back_to_a_page_already_read_fails_the_query_instead_of_looping(
    how: str, cursor: str | None, pages: int
) -> None:
    listing = Looping(how)
    state = {"queries": {"q": {"cursor": cursor}}} if cursor else {}
    batch = sweep(["q", "next"], state, listing, max_pages=50, first_start=START)
    assert len(listing.calls) == pages  # not 50 pages of the same posts
    assert batch.error is not None and batch.error.transient
    assert batch.error.message.startswith("paging does not move on") and "(query q)" in batch.error.message
    assert "since" not in batch.state["queries"]["q"]  # the marker has not moved past unread posts
    assert batch.posts  # what was read is kept


def test_the_budget_is_asked_before_each_page() -> None:
    pages = iter([True, True, False])
    batch = sweep(
        ["q"], {}, Listing(newest=20), max_pages=10, first_start=START, may_read=lambda: next(pages)
    )
    assert len(batch.posts) == 6 and not batch.more


def test_retrying_retries_transient_errors_only() -> None:
    settings = source_settings(collector__retry_attempts=3)
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("reset")
        return "ok"

    assert retrying(settings, flaky, lambda exc: SourceError(str(exc))) == "ok" and len(calls) == 3
    calls.clear()
    with pytest.raises(SourceError, match="refused"):
        retrying(
            settings, lambda: calls.append(1) or 1 / 0, lambda exc: SourceError("refused", permanent=True)
        )
    assert len(calls) == 1


def test_retrying_stops_retrying_once_vigil_run_is_stopping() -> None:
    """A hung feed held a SIGTERM for every attempt and wait: past systemd's patience, it was killed."""
    settings = source_settings(collector__retry_attempts=5, collector__retry_wait_seconds=60)
    calls: list[int] = []

    def hung() -> str:
        calls.append(1)
        STOPPING.set()  # SIGTERM arrives during the first attempt
        raise TimeoutError("timed out")

    try:
        with pytest.raises(SourceError, match="timed out"):
            retrying(settings, hung, lambda exc: SourceError(str(exc)))
    finally:
        STOPPING.clear()
    assert len(calls) == 1  # no second attempt, and no minute's wait before it


@pytest.mark.parametrize(
    ("markup", "text"),
    [
        ("<p>Dr <b>Smith</b> &amp; co</p><p>second</p>", "Dr Smith & co\nsecond"),
        ("line<br>break", "line\nbreak"),
        ("plain &lt;not a tag&gt;", "plain <not a tag>"),
        ('<a href="x">#<span>NHS</span></a>', "#NHS"),
        ("<script>alert(1)</script>hi", "alert(1)hi"),
    ],
)
def test_html_becomes_plain_text(markup: str, text: str) -> None:
    assert html_to_text(markup) == text


def test_a_new_query_that_fails_reads_from_where_it_should_have_at_the_next_pass() -> None:
    starts: list[datetime] = []

    def fails_once(query: str, since: str | None, cursor: str | None, start: datetime) -> Page:
        starts.append(start)
        if len(starts) == 1:
            raise TRANSIENT
        return Page([])

    batch = sweep(["q"], {}, fails_once, max_pages=10, first_start=START)  # fails at once
    batch = sweep(["q"], batch.state, fails_once, max_pages=10, first_start=START)  # the pass ends
    sweep(["q"], batch.state, fails_once, max_pages=10, first_start=START)  # the next pass
    assert starts == [START, START]  # not the next pass's start: the backfill window is not lost
