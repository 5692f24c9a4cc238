"""Reddit through PRAW (application-only OAuth): search for submissions, and the newest comments.

The registered names are quoted and joined with OR into as few searches as fit Reddit's 512
character query limit, over all configured subreddits at once (``GPUK+NHS+leeds``). Search finds
submissions only, never comments, and most abuse on Reddit is in comments: so the newest comments
of ``sources.reddit.comment_subreddits`` (a few small medical subreddits) are read as well, every
one of them, and the collector's matcher drops those that name no one (nearly all) before
anything is stored. Comments elsewhere are not seen, and a comment is matched on its own text: a
reply that does not name the doctor, in a thread about them, names no one.

Neither listing has a "newer than" parameter: a sweep pages back until it reaches the newest item
of the last sweep. The comment listing is one more entry in the sweep's queries, under a key that
no search query can take (those all start with a quote). Reddit lists only about the newest 1,000
comments: when the listing ends before the last sweep's newest comment, the comments in between
are lost, and the operator is told (a ``reddit_comments_gap`` notice).

PRAW already retries 5xx answers and dropped connections, and paces requests by Reddit's
rate-limit headers, so this module does not retry on top of it.

``sources.reddit.oauth_url`` and ``reddit_url`` re-point PRAW (as for any Reddit-compatible API).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import praw
import prawcore

from collector.http import describe, http_session
from collector.post import Post
from collector.sources.base import (
    Batch,
    Context,
    Notice,
    Page,
    SourceError,
    State,
    each_post,
    parse_time,
    retry_in,
    retrying,
    sweep_queries,
)

MAX_QUERY = 512
PAGE_SIZE = 100


class RedditSource:
    name = "reddit"

    def __init__(self, context: Context) -> None:
        self.settings = context.settings
        options = context.options(self.name)
        self.reddit = praw.Reddit(
            client_id=options.client_id.get(),
            client_secret=options.client_secret.get(),
            user_agent=options.user_agent,
            oauth_url=options.oauth_url,
            reddit_url=options.reddit_url,
            requestor_kwargs={"session": http_session(self.settings)},  # caps PRAW's fixed 16 s timeout
            check_for_updates=False,
            check_for_async=False,
        )
        self.subreddits = joined(options.subreddits)
        self.queries = pack_or(f'"{name}"' for name in context.names)
        self.comment_subreddits = joined(options.comment_subreddits)
        # With nobody registered no comment can match: reading them would only cost requests.
        self.comments_query = comments_key(self.comment_subreddits) if context.names else None
        if self.comments_query:
            self.queries.append(self.comments_query)
        self.notices: list[Notice] = []

    def fetch(self, state: State) -> Batch:
        self.notices = []
        batch = sweep_queries(self.settings, self.queries, state, self.fetch_page)
        batch.notices.extend(self.notices)
        return batch

    def fetch_page(self, query: str, since: str | None, cursor: str | None, start: datetime) -> Page:
        if query == self.comments_query:
            return self.comments_page(since, cursor, start)
        return self.search_page(query, since, cursor, start)

    def search_page(self, query: str, since: str | None, cursor: str | None, start: datetime) -> Page:
        params = {"after": cursor} if cursor else {}
        listing = self.reddit.subreddit(self.subreddits).search(
            query, sort="new", time_filter="all", limit=PAGE_SIZE, params=params
        )
        submissions = retrying(self.settings, lambda: list(listing), classify_error, attempts=1)
        oldest = parse_time(since) if since else start
        fresh = [s for s in submissions if created(s) >= oldest]
        more = len(submissions) == PAGE_SIZE and len(fresh) == len(submissions)
        return Page(
            each_post(self.name, fresh, to_post),
            cursor=submissions[-1].fullname if more else None,
            newest=created(fresh[0]).isoformat() if fresh else None,
        )

    def comments_page(self, since: str | None, cursor: str | None, start: datetime) -> Page:
        """One page of the comment subreddits' newest comments (``GET /r/{subs}/comments``).

        Every comment is kept, whatever it says: matching comes later, in the collector, and
        drops the ones naming no one before anything is stored or logged.
        """
        params: dict[str, str | int] = {"after": cursor} if cursor else {}
        listing = self.reddit.subreddit(self.comment_subreddits).comments(limit=PAGE_SIZE, params=params)
        comments = retrying(self.settings, lambda: list(listing), classify_error, attempts=1)
        oldest = parse_time(since) if since else start
        fresh = [c for c in comments if created(c) >= oldest]
        more = len(comments) == PAGE_SIZE and len(fresh) == len(comments)
        if since and ran_out(comments, cursor, parse_time(since)):
            self.notices.append(self.gap_notice(since, comments))
        return Page(
            each_post(self.name, fresh, comment_to_post),
            cursor=comments[-1].fullname if more else None,
            newest=created(fresh[0]).isoformat() if fresh else None,
        )

    def gap_notice(self, since: str, comments: list[Any]) -> Notice:
        """Tell the operator which comments were lost: never their text, only when they were made."""
        until = f"{created(comments[-1]):%Y-%m-%d %H:%M} UTC" if comments else "the oldest comment read"
        message = (
            f"Reddit's listing of the newest comments of r/{self.comment_subreddits} ended (it keeps about "
            f"1,000) before the newest comment of the last sweep ({parse_time(since):%Y-%m-%d %H:%M} UTC): "
            f"comments made between then and {until} were not read. Poll Reddit more often "
            "(sources.reddit.interval_minutes) or drop busy subreddits from "
            "sources.reddit.comment_subreddits."
        )
        return Notice("reddit_comments_gap", "Reddit comments missed", message)


def joined(subreddits: Iterable[str]) -> str:
    """``GPUK+NHS``: several subreddits read as one, in one request."""
    return "+".join(name.removeprefix("r/") for name in subreddits)


def comments_key(subreddits: str) -> str | None:
    """The comment listing's entry among the sweep's queries (None: no comment subreddits).

    Search queries all start with a quote, so none can take it; it names the subreddits, so that
    changing them starts afresh from the last pass, and it reads well in an error
    (``... (query comments of r/GPUK+NHS)``).
    """
    return f"comments of r/{subreddits}" if subreddits else None


def ran_out(comments: list[Any], cursor: str | None, since: datetime) -> bool:
    """Whether the listing ended before reaching the last sweep's newest comment: a short page
    (Reddit's listings stop at about 1,000 items) whose every comment is newer than it. A page
    that comes back empty at once is no gap (there is nothing to read)."""
    if len(comments) == PAGE_SIZE or (not comments and cursor is None):
        return False
    return all(created(comment) > since for comment in comments)


def pack_or(terms: Iterable[str], limit: int = MAX_QUERY) -> list[str]:
    """Join terms with `` OR `` into as few queries as fit ``limit`` characters (in order)."""
    queries: list[str] = []
    for term in terms:
        if queries and len(queries[-1]) + len(" OR ") + len(term) <= limit:
            queries[-1] += " OR " + term
        else:
            queries.append(term[:limit])
    return queries


def created(submission: Any) -> datetime:
    return datetime.fromtimestamp(float(submission.created_utc), UTC)


def to_post(submission: Any) -> Post:
    author = submission.author.name if submission.author else "[deleted]"
    text = submission.title + (f"\n\n{submission.selftext}" if submission.selftext else "")
    extra: dict[str, Any] = {"subreddit": str(submission.subreddit)}
    if not submission.is_self:
        extra["link"] = submission.url
    return Post(
        source="reddit",
        external_id=submission.fullname,
        url=f"https://www.reddit.com{submission.permalink}",
        author=f"u/{author}",
        author_id=getattr(submission, "author_fullname", None),
        created_at=created(submission),
        text=text,
        extra=extra,
    )


def comment_to_post(comment: Any) -> Post:
    """A comment as a post. Its submission's title and link come from the listing itself
    (``link_title``, ``link_permalink``): ``comment.submission`` would fetch it, one request each."""
    author = comment.author.name if comment.author else "[deleted]"
    extra: dict[str, Any] = {"subreddit": str(comment.subreddit)}
    for key in ("link_id", "link_title", "link_permalink"):
        value = vars(comment).get(key)  # read the listing's data, never PRAW's lazy fetch
        if value:
            extra[key] = value
    return Post(
        source="reddit",
        external_id=comment.fullname,
        url=f"https://www.reddit.com{comment.permalink}",
        author=f"u/{author}",
        author_id=vars(comment).get("author_fullname"),
        created_at=created(comment),
        text=comment.body,
        extra=extra,
    )


def classify_error(exc: Exception) -> SourceError:
    if isinstance(exc, prawcore.TooManyRequests):
        wait = exc.retry_after or exc.response.headers.get("x-ratelimit-reset") or 60
        reset = retry_in(wait) or datetime.now(UTC) + timedelta(minutes=1)
        return SourceError(f"Reddit rate limit reached; resets at {reset:%H:%M} UTC", retry_after=reset)
    if isinstance(exc, prawcore.OAuthException):
        return SourceError(f"Reddit refused the app credentials: {exc}", permanent=True)
    if isinstance(exc, prawcore.BadJSON):
        return SourceError("Reddit answered with malformed JSON")
    if isinstance(exc, prawcore.ResponseException):
        status = exc.response.status_code
        if status in (401, 403):
            return SourceError(f"Reddit refused the app credentials ({status}): {exc}", permanent=True)
        if status in (404, 302):
            return SourceError(
                f"Reddit has no such subreddit ({status}): check sources.reddit.subreddits "
                "and sources.reddit.comment_subreddits",
                permanent=True,
            )
        return SourceError(f"Reddit answered {status}: {exc}")
    if isinstance(exc, prawcore.RequestException):
        return SourceError(f"Reddit could not be reached: {describe(exc.original_exception)}")
    if isinstance(exc, prawcore.PrawcoreException | ValueError):
        return SourceError(f"Reddit could not be reached: {type(exc).__name__}: {exc}")
    return SourceError(f"Reddit read failed: {type(exc).__name__}: {exc}")
