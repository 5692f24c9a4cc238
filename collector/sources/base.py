"""The one contract every source meets, and the helpers they share.

A source reads new public posts since a checkpoint::

    batch = source.fetch(state)      # state: the JSON checkpoint stored after the last batch

and returns a ``Batch``: the posts, the checkpoint that covers them, whether there is more to
read at once, and (when the read stopped early) the ``SourceError`` that stopped it. The runner
stores the posts and the new checkpoint in one transaction, so a crash anywhere loses nothing and
stores nothing twice. A source never touches the database and never raises for an expected
failure after it has read something: posts read before a failure are kept.

Most APIs list posts newest first with a cursor to older pages and a way to ask only for posts
newer than a marker (an id or a time). ``sweep`` runs that loop for every query of a source and
keeps, per query, the marker (``since``), and while a sweep is under way its ``cursor`` and the
``newest`` marker seen on its first page; the marker only moves on when a sweep is complete, so a
sweep interrupted by an error, a page limit or a crash resumes where it stopped. A query that
fails is skipped until the next pass, so that one bad query never starves the others.
"""

from __future__ import annotations

import html
import logging
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any, Protocol, TypeVar

import tenacity

from collector.post import Post
from vigil.settings import Settings

log = logging.getLogger(__name__)

State = dict[str, Any]
T = TypeVar("T")


class SourceError(Exception):
    """A poll failed. ``permanent`` means retrying will not help (bad credentials, a revoked app);
    ``retry_after`` is the earliest time worth trying again (a rate limit's reset time)."""

    def __init__(self, message: str, *, permanent: bool = False, retry_after: datetime | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.retry_after = retry_after

    @property
    def transient(self) -> bool:
        """Worth retrying at once, a few times: a timeout, a dropped connection, a 5xx."""
        return not self.permanent and self.retry_after is None


@dataclass(frozen=True)
class Notice:
    """Something the operator must hear about that is not a failure (a budget nearly spent)."""

    kind: str
    subject: str
    message: str


@dataclass
class Batch:
    """Posts read since the checkpoint, and the new checkpoint that covers exactly them."""

    posts: list[Post]
    state: State
    more: bool = False
    error: SourceError | None = None
    notices: list[Notice] = field(default_factory=list)


class Source(Protocol):
    name: str

    def fetch(self, state: State) -> Batch: ...


@dataclass(frozen=True)
class Context:
    """What a source is built from: the settings, and the register it searches for.

    ``entities`` are the matcher's entities (the X query planner packs them into queries);
    ``names`` are every registered name and alias, for APIs searched one term at a time;
    ``ods_codes`` are the registered practices' ODS codes (Care Opinion is keyed by them).
    """

    settings: Settings
    entities: Sequence[Any] = ()
    names: Sequence[str] = ()
    ods_codes: Sequence[str] = ()

    def options(self, name: str) -> Any:
        """The settings section of one source (``settings.sources.<name>``)."""
        return getattr(self.settings.sources, name)


# ---------------------------------------------------------------------------------------------
# Retrying transient failures
# ---------------------------------------------------------------------------------------------


def retrying(
    settings: Settings,
    call: Callable[[], T],
    classify: Callable[[Exception], SourceError],
    attempts: int | None = None,
) -> T:
    """Call ``call``; map library errors to ``SourceError`` with ``classify``; retry transient ones.

    Timeouts, dropped connections and 5xx answers are retried with exponential backoff
    (``collector.retry_attempts``, ``collector.retry_wait_seconds``). Rate limits and permanent
    errors are raised at once: the runner waits for the reset instead of hammering the API.
    ``attempts=1`` for libraries that retry by themselves. Once ``vigil run`` is stopping, no
    attempt is retried and no wait is slept out: a hung server would otherwise hold the stop for
    every attempt, past what a service manager waits before it kills the process.
    """
    from vigil.scheduler import STOPPING  # here: the scheduler imports the sources

    def attempt() -> T:
        try:
            return call()
        except SourceError:
            raise
        except Exception as exc:  # every library raises its own family; classify names them
            raise classify(exc) from exc

    retryer = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(attempts or int(settings.collector.retry_attempts))
        | tenacity.stop_when_event_set(STOPPING),
        wait=tenacity.wait_exponential(multiplier=float(settings.collector.retry_wait_seconds), max=60),
        sleep=lambda seconds: _sleep_unless_stopping(STOPPING, seconds),
        retry=tenacity.retry_if_exception(lambda exc: isinstance(exc, SourceError) and exc.transient),
        before_sleep=lambda state: log.warning(
            "retrying after a transient failure: %s", state.outcome.exception() if state.outcome else ""
        ),
        reraise=True,
    )
    return retryer(attempt)


def _sleep_unless_stopping(stopping: threading.Event, seconds: float) -> None:
    stopping.wait(seconds)  # wakes at once when vigil run is stopping


def reset_time(epoch_seconds: Any) -> datetime | None:
    """A rate limit's reset time from a Unix-seconds header value, if it is one."""
    try:
        return datetime.fromtimestamp(int(float(epoch_seconds)), UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def retry_in(seconds: Any, now: datetime | None = None) -> datetime | None:
    """A rate limit's reset time from a seconds-from-now header value, if it is one."""
    try:
        return (now or datetime.now(UTC)) + timedelta(seconds=max(1.0, float(seconds)))
    except (TypeError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------
# Newest-first pagination across queries
# ---------------------------------------------------------------------------------------------


@dataclass
class Page:
    """One page of a newest-first listing: its posts, the cursor to older posts, the newest marker."""

    posts: list[Post]
    cursor: str | None = None
    newest: str | None = None


# fetch_page(query, since, cursor, start) -> Page. ``since`` is the marker left by the query's last
# complete sweep (None the first time); ``start`` is the time a query without a marker reads from.
PageFetcher = Callable[[str, str | None, str | None, datetime], Page]


def sweep(
    queries: Iterable[str],
    state: State,
    fetch_page: PageFetcher,
    *,
    max_pages: int,
    first_start: datetime,
    may_read: Callable[[], bool] = lambda: True,
) -> Batch:
    """Read the new posts of every query, at most ``max_pages`` pages per batch.

    ``state["queries"]`` maps each query to its ``since`` marker and, during a sweep, the
    ``cursor`` to the next older page and the ``newest`` marker of the sweep's first page. A pass
    over all queries may take several batches: ``state["pass"]`` is when the pass began, and a
    query swept in this pass carries it, so that queries late in the list are not starved.
    ``state["last_pass"]`` is when the last complete pass began: a query added to the register
    later starts reading from there (``first_start`` before any pass completed), so a new query
    never re-reads history nobody asked for. ``may_read()`` is asked before each page (a budget).

    A rate limit stops the batch where it is (it covers every query). Any other error skips the
    failing query for this pass, keeping its marker and cursor, so that one query the API refuses
    (a hashtag unknown to the server, a rejected search) cannot block the queries after it: after
    a permanent error the other queries carry on; after a transient one (the network, a 5xx
    after retries) the batch stops and the next poll carries on with the next query. The batch
    reports the failure (``failed``), so the poll is still recorded as failed. A query that fails
    before it was ever read keeps the start it should have read from (``from``), so its backfill
    window is not lost to the next pass's later start. Paging that leads back to a page already
    read is such an error (``check_paging_moves_on``): followed, it would never end.
    """
    queries = list(dict.fromkeys(queries))
    known = state.get("queries", {})
    progress = {query: dict(known.get(query, {})) for query in queries}
    this_pass = state.get("pass") or utcnow_iso()
    last_pass = state.get("last_pass")
    start = parse_time(last_pass) if last_pass else first_start
    posts: list[Post] = []
    pages = 0
    failures: list[tuple[str, SourceError]] = []
    trails: dict[str, Trail] = {}
    for query in queries:
        entry = progress[query]
        while entry.get("pass") != this_pass:
            if pages >= max_pages or not may_read():
                more = pages >= max_pages
                return _batch(state, progress, posts, this_pass, more=more, error=failed(failures))
            try:
                since_start = parse_time(entry["from"]) if "from" in entry else start
                page = fetch_page(query, entry.get("since"), entry.get("cursor"), since_start)
                pages += 1
                posts.extend(page.posts)
                check_paging_moves_on(page, entry.get("cursor"), trails.setdefault(query, Trail()))
            except SourceError as exc:
                if exc.retry_after is not None:  # a rate limit covers every query: stop, resume here
                    return _batch(state, progress, posts, this_pass, error=failed([("", exc), *failures]))
                # This query is skipped for this pass, its marker and cursor kept, so that it can
                # never starve the queries after it; the next pass tries it again.
                entry["pass"] = this_pass
                if entry.get("since") is None:  # never read yet: next pass, from where it should have
                    entry.setdefault("from", start.isoformat())
                failures.append((query, exc))
                if exc.transient:  # the server or the network is failing: the next poll carries on
                    return _batch(state, progress, posts, this_pass, error=failed(failures))
                break
            if entry.get("cursor") is None and page.newest:
                entry["newest"] = page.newest
            entry["cursor"] = page.cursor
            if page.cursor is None:
                entry["since"] = entry.pop("newest", None) or entry.get("since")
                entry["pass"] = this_pass
                entry.pop("from", None)
    batch = _batch(state, progress, posts, this_pass, error=failed(failures))
    batch.state.pop("pass", None)
    batch.state["last_pass"] = this_pass
    for entry in batch.state["queries"].values():
        entry.pop("pass", None)
    return batch


@dataclass
class Trail:
    """The cursors a query was given, and the posts it read, in this batch."""

    cursors: set[str] = field(default_factory=set)
    posts: set[tuple[str, str]] = field(default_factory=set)


def check_paging_moves_on(page: Page, cursor: str | None, trail: Trail) -> None:
    """Raise if the API sends a query back to a page it has read: a cursor it gave before, or a
    page of only posts already read (a server that ignores the cursor). Followed, such paging
    never ends: the collector would loop for good, and X would bill every read of the same page
    until the month's budget was gone. The query keeps its cursor and marker, as for any error."""
    if cursor is not None:
        trail.cursors.add(cursor)
    if page.cursor is None:
        return
    read = {(post.external_id, post.url) for post in page.posts}
    if page.cursor in trail.cursors or (read and read <= trail.posts):
        raise SourceError(
            f"paging does not move on: the page after cursor {cursor!r} leads back to one already "
            f"read (cursor {page.cursor!r}); the query stops here until the next pass"
        )
    trail.cursors.add(page.cursor)
    trail.posts.update(read)


def failed(failures: list[tuple[str, SourceError]]) -> SourceError | None:
    """The one error a batch reports for every query that failed in it: the first (a rate limit
    comes first, as it sets when to try again), naming its query, and how many others failed."""
    if not failures:
        return None
    query, first = failures[0]
    message = f"{first.message} (query {query})" if query else first.message
    if len(failures) > 1:
        message += f"; {len(failures) - 1} more quer{'y' if len(failures) == 2 else 'ies'} failed"
    permanent = any(error.permanent for _, error in failures)
    retry_after = next((error.retry_after for _, error in failures if error.retry_after), None)
    return SourceError(message, permanent=permanent, retry_after=retry_after)


def sweep_queries(
    settings: Settings,
    queries: Iterable[str],
    state: State,
    fetch_page: PageFetcher,
    may_read: Callable[[], bool] = lambda: True,
) -> Batch:
    """``sweep`` with the collector's page limit per batch and first-read window."""
    return sweep(
        queries,
        state,
        fetch_page,
        max_pages=int(settings.collector.max_pages),
        first_start=datetime.now(UTC) - timedelta(hours=int(settings.collector.backfill_hours)),
        may_read=may_read,
    )


def _batch(
    state: State,
    progress: dict[str, dict[str, Any]],
    posts: list[Post],
    this_pass: str,
    *,
    more: bool = False,
    error: SourceError | None = None,
) -> Batch:
    queries = {
        query: {key: value for key, value in entry.items() if value is not None}
        for query, entry in progress.items()
    }
    return Batch(posts=posts, state={**state, "queries": queries, "pass": this_pass}, more=more, error=error)


def utcnow_iso() -> str:
    return datetime.now(UTC).isoformat()


# ---------------------------------------------------------------------------------------------
# Items the API sent malformed
# ---------------------------------------------------------------------------------------------


def each_post(source: str, items: Iterable[T], to_post: Callable[[T], Post]) -> list[Post]:
    """Each item the API sent as a post; one that cannot be read (a field missing, null or of
    another shape than documented) is skipped with an error naming the source and the item, and
    the rest are kept. Raised, it would fail the whole batch, and as the same item comes back
    every time its page is read, every poll after it: one bad item would stop the source."""
    posts = []
    for item in items:
        try:
            posts.append(to_post(item))
        except Exception as exc:  # any shape the API may send: the item's own fault, not the poll's
            log.error(
                "source %s: skipped item %s, which could not be read: %s: %s",
                source, item_id(item), type(exc).__name__, exc, extra={"source": source},
            )  # fmt: skip
    return posts


def item_id(item: Any) -> str:
    """What names an API item in a log line: its URI or id (never its text)."""
    for key in ("uri", "id"):
        value = item.get(key) if isinstance(item, dict) else getattr(item, key, None)
        if value:
            return repr(str(value)[:200])
    return "without an id"


# ---------------------------------------------------------------------------------------------
# Text helpers
# ---------------------------------------------------------------------------------------------


class _TextExtractor(HTMLParser):
    BREAKS = {"br", "p", "div", "li", "blockquote", "h1", "h2", "h3", "h4", "tr"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.BREAKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.BREAKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_text(markup: str) -> str:
    """Plain text from an HTML fragment (Mastodon statuses, feed summaries); tags dropped."""
    if "<" not in markup:
        return html.unescape(markup).strip()
    parser = _TextExtractor()
    parser.feed(markup)
    parser.close()
    text = "".join(parser.parts)
    text = re.sub(r"[ \t\r\f\v]+", " ", text)
    return re.sub(r"\s*\n\s*", "\n", text).strip()


def parse_time(value: Any) -> datetime:
    """An aware UTC datetime from an ISO 8601 string (``Z`` or an offset) or a datetime."""
    if isinstance(value, datetime):
        moment = value
    else:
        moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
