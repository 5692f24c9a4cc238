"""Reddit search of configured subreddits, newest first, through PRAW (application-only OAuth).

The registered names are quoted and joined with OR into as few searches as fit Reddit's 512
character query limit, over all configured subreddits at once (``GPUK+NHS+leeds``). Search has
no "newer than" parameter: a sweep pages back until it reaches the newest post of the last
sweep. PRAW already retries 5xx answers and dropped connections, and paces requests by Reddit's
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
    Page,
    SourceError,
    State,
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
        self.subreddits = "+".join(name.removeprefix("r/") for name in options.subreddits)
        self.queries = pack_or(f'"{name}"' for name in context.names)

    def fetch(self, state: State) -> Batch:
        return sweep_queries(self.settings, self.queries, state, self.fetch_page)

    def fetch_page(self, query: str, since: str | None, cursor: str | None, start: datetime) -> Page:
        params = {"after": cursor} if cursor else {}
        listing = self.reddit.subreddit(self.subreddits).search(
            query, sort="new", time_filter="all", limit=PAGE_SIZE, params=params
        )
        submissions = retrying(self.settings, lambda: list(listing), classify_error, attempts=1)
        oldest = parse_time(since) if since else start
        fresh = [s for s in submissions if created(s) >= oldest]
        more = len(submissions) == PAGE_SIZE and len(fresh) == len(submissions)
        return Page(
            [to_post(s) for s in fresh],
            cursor=submissions[-1].fullname if more else None,
            newest=created(fresh[0]).isoformat() if fresh else None,
        )


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
                f"Reddit has no such subreddit ({status}): check sources.reddit.subreddits", permanent=True
            )
        return SourceError(f"Reddit answered {status}: {exc}")
    if isinstance(exc, prawcore.RequestException):
        return SourceError(f"Reddit could not be reached: {describe(exc.original_exception)}")
    if isinstance(exc, prawcore.PrawcoreException | ValueError):
        return SourceError(f"Reddit could not be reached: {type(exc).__name__}: {exc}")
    return SourceError(f"Reddit search failed: {type(exc).__name__}: {exc}")
