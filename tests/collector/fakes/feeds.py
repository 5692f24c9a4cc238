"""Fake feeds: Google Alerts-style Atom and RSS 2.0, with ETag / Last-Modified and 304 answers.

The Atom shape follows a Google Alerts feed (``tag:google.com,2013:googlealerts/feed:...`` ids,
HTML-escaped titles with ``<b>`` around the matched words, each link a google.com/url redirect).
"""

from __future__ import annotations

import hashlib
from email.utils import format_datetime
from html import escape
from urllib.parse import quote

from tests.collector.fakes.corpus import Item
from tests.collector.fakes.server import FakeServer, Reply, Request

FEED_PATH = "/feeds/(?P<feed>[^/]+)"


def atom(items: list[Item], feed: str) -> str:
    entries = "".join(
        f"""
  <entry>
    <id>tag:google.com,2013:googlealerts/feed:{9000000000 + item.number}</id>
    <title type="html">{escape(item.text.replace("Amira Hassan", "<b>Amira Hassan</b>"))}</title>
    <link href="https://www.google.com/url?rct=j&amp;sa=t&amp;url={quote(story_url(item), safe="")}&amp;ct=ga&amp;cd=CAIyGjA&amp;usg=AOvVaw0"/>
    <published>{item.created_at.strftime("%Y-%m-%dT%H:%M:%SZ")}</published>
    <updated>{item.created_at.strftime("%Y-%m-%dT%H:%M:%SZ")}</updated>
    <content type="html">{escape("<p>" + item.text + " &hellip;</p>")}</content>
    <author><name></name></author>
  </entry>"""
        for item in sorted(items, key=lambda item: item.created_at, reverse=True)
    )
    return f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:idx="urn:atom-extension:indexing">
  <id>tag:google.com,2005:reader/user/06807031914929345698/state/com.google/alerts/{feed}</id>
  <title>Google Alert - Amira Hassan</title>
  <link href="https://www.google.com/alerts/feeds/06807031914929345698/{feed}" rel="self"/>
  <updated>2026-11-24T08:00:00Z</updated>{entries}
</feed>"""


def rss(items: list[Item]) -> str:
    entries = "".join(
        f"""
    <item>
      <title>{escape(item.text)}</title>
      <link>{story_url(item)}?utm_source=rss&amp;utm_medium=feed</link>
      <guid isPermaLink="false">leeds-news-{item.number}</guid>
      <pubDate>{format_datetime(item.created_at, usegmt=True)}</pubDate>
      <author>newsdesk@leedsnews.example (News desk)</author>
      <description>{escape(item.text)}</description>
    </item>"""
        for item in items
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Leeds News</title><link>https://leedsnews.example/</link>
<description>Local news</description>{entries}
</channel></rss>"""


def story_url(item: Item) -> str:
    return f"https://www.leedsnews.example/news/{item.number}-gp-story"


class FakeFeeds:
    """Feeds ``/feeds/alerts-0``, ``alerts-1``, ...; ``feed N`` serves the items with ``number % feeds == N``."""

    def __init__(self, server: FakeServer, feeds: int = 1, kind: str = "atom") -> None:
        self.server = server
        self.items: list[Item] = []
        self.feeds = feeds
        self.kind = kind
        self.last_modified = "Tue, 24 Nov 2026 08:00:00 GMT"
        server.route("GET", FEED_PATH, self.feed)

    def urls(self, base_url: str) -> list[str]:
        return [f"{base_url}/feeds/alerts-{index}" for index in range(self.feeds)]

    def rate_limited(self) -> Reply:
        return Reply(429, b"Too Many Requests", {"Retry-After": "120", "Content-Type": "text/plain"})

    def unauthorized(self) -> Reply:
        return Reply(403, b"<html><body>Forbidden</body></html>", {"Content-Type": "text/html"})

    def feed(self, request: Request) -> Reply:
        index = int(request.match["feed"].rsplit("-", 1)[-1])
        items = [item for item in self.items if item.number % self.feeds == index]
        body = atom(items, request.match["feed"]) if self.kind == "atom" else rss(items)
        etag = '"' + hashlib.sha1(body.encode()).hexdigest()[:16] + '"'
        if request.headers.get("if-none-match") == etag:
            return Reply(304, b"", {"ETag": etag})
        content_type = "application/atom+xml; charset=utf-8" if self.kind == "atom" else "application/rss+xml"
        return Reply(
            200, body, {"Content-Type": content_type, "ETag": etag, "Last-Modified": self.last_modified}
        )
