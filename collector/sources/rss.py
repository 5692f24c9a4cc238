"""RSS and Atom feeds (Google Alerts feeds, news searches) read with feedparser.

Each feed is fetched through Vigil's HTTP session (feedparser's own fetching has no timeout) as a
conditional GET: the ETag and Last-Modified of the last answer are sent back, and an unchanged
feed answers 304 with nothing to parse. Feeds have no paging; entries already stored are skipped
by the store. One failing feed does not stop the others: the poll reports the first failure.
An answer with no feed in it (an empty body, a web page) is a failure, never an empty feed: a
feed whose address came to serve a sign-in page would otherwise go quiet without a word.
Google Alerts wraps each link in a google.com redirect; the real address is stored.
"""

from __future__ import annotations

import calendar
import functools
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import feedparser
import requests

from collector.http import describe, http_session
from collector.post import Post
from collector.sources.base import (
    Batch,
    Context,
    SourceError,
    State,
    html_to_text,
    parse_time,
    retry_in,
    retrying,
)
from collector.urls import unwrap_redirect

GOOGLE_ALERT = "Google Alert - "  # how every Google Alerts feed's title starts
PERMANENT = {401: "refused (401)", 403: "forbidden (403)", 404: "not found (404)", 410: "gone (410)"}


@dataclass
class FeedRead:
    posts: list[Post]
    validators: dict[str, str]


class FeedSource:
    name = "rss"

    def __init__(self, context: Context) -> None:
        self.settings = context.settings
        self.feeds = list(context.options(self.name).feeds)
        self.session = http_session(self.settings)

    def fetch(self, state: State) -> Batch:
        known = state.get("feeds", {})
        feeds: dict[str, dict[str, str]] = {}
        posts: list[Post] = []
        errors: list[SourceError] = []
        now = datetime.now(UTC)
        for url in self.feeds:
            saved = known.get(url, {})
            if saved.get("retry_after") and parse_time(saved["retry_after"]) > now:
                feeds[url] = saved  # this feed's server asked us to wait; the others carry on
                continue
            try:
                read = retrying(self.settings, functools.partial(self.read, url, saved), classify_error)
            except SourceError as exc:
                feeds[url] = {
                    **saved,
                    **({"retry_after": exc.retry_after.isoformat()} if exc.retry_after else {}),
                }
                errors.append(
                    SourceError(f"{url}: {exc.message}", permanent=exc.permanent, retry_after=exc.retry_after)
                )
                continue
            posts.extend(read.posts)
            feeds[url] = read.validators
        return Batch(posts, {"feeds": feeds}, error=first_error(errors, len(self.feeds)))

    def read(self, url: str, saved: dict[str, str]) -> FeedRead:
        headers = {}
        if saved.get("etag"):
            headers["If-None-Match"] = saved["etag"]
        if saved.get("modified"):
            headers["If-Modified-Since"] = saved["modified"]
        response = self.session.get(url, headers=headers)
        if response.status_code == 304:
            return FeedRead([], saved)
        check_status(response)
        parsed = feedparser.parse(
            response.content, response_headers={k.lower(): v for k, v in response.headers.items()}
        )
        if parsed.bozo and not parsed.entries:
            raise SourceError(f"not a readable RSS or Atom feed ({parsed.get('bozo_exception')})")
        if not parsed.get("version") and not parsed.entries:  # an empty body, a sign-in page
            raise SourceError("not a readable RSS or Atom feed (the answer holds no feed)")
        title = parsed.feed.get("title", "")
        found = {
            "etag": response.headers.get("ETag", ""),
            "modified": response.headers.get("Last-Modified", ""),
        }
        return FeedRead(
            [to_post(entry, url, title) for entry in parsed.entries],
            {key: value for key, value in found.items() if value},
        )


def first_error(errors: list[SourceError], feeds: int) -> SourceError | None:
    """The poll's error: every failing feed named; a retry time only if every feed must wait."""
    if not errors:
        return None
    waits = [error.retry_after for error in errors if error.retry_after]
    return SourceError(
        "; ".join(error.message for error in errors),
        permanent=any(error.permanent for error in errors),
        retry_after=min(waits) if len(waits) == feeds else None,
    )


def check_status(response: requests.Response) -> None:
    status = response.status_code
    if status == 429:
        wait = retry_in(response.headers.get("Retry-After", 300))
        raise SourceError("the feed's server asks us to slow down (429)", retry_after=wait)
    if status in PERMANENT:
        raise SourceError(f"the feed is {PERMANENT[status]}", permanent=True)
    if status >= 400:
        raise SourceError(f"the feed's server answered {status}")


def to_post(entry: Any, feed_url: str, feed_title: str) -> Post:
    """An entry without an author takes the feed's title (a news site's feed), except in a Google
    Alert, whose title names whom it watches, which another practice must not see: its entries,
    from any site, have none (each is then its own author to case detection)."""
    link = unwrap_redirect(entry.get("link", ""))
    summary = entry.get("summary") or (entry.get("content") or [{}])[0].get("value", "")
    text = "\n".join(part for part in (html_to_text(entry.get("title", "")), html_to_text(summary)) if part)
    external_id = entry.get("id") or link or hashlib.sha256(text.encode()).hexdigest()
    stamp = entry.get("published_parsed") or entry.get("updated_parsed")
    created = datetime.fromtimestamp(calendar.timegm(stamp), UTC) if stamp else datetime.now(UTC)
    return Post(
        source="rss",
        external_id=external_id,
        url=link,
        author=entry.get("author") or ("" if feed_title.startswith(GOOGLE_ALERT) else feed_title),
        created_at=created,
        text=text,
        lang=None,
        extra={"feed": feed_url},
    )


def classify_error(exc: Exception) -> SourceError:
    return SourceError(f"the feed could not be fetched: {describe(exc)}")
