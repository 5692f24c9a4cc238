"""A fake Mastodon instance: instance info, hashtag timelines and ``/api/v2/search``.

Shapes from docs.joinmastodon.org: Status (id, uri, url, created_at, account, content as HTML,
visibility, language, in_reply_to_id, in_reply_to_account_id, mentions, tags, reblog, ...),
Search (accounts, statuses, hashtags); errors ``{"error": ...}`` (a tag timeline for a hashtag the
server has never seen: 404 ``{"error": "Record not found"}``); rate limits with
``X-RateLimit-Limit/Remaining/Reset`` (an ISO 8601 time).

An item's ``reply_to`` is the ``acct`` of the account replied to, as this server writes it:
``user@domain`` for an account elsewhere, ``user`` alone for an account of its own.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta

from tests.collector.fakes.corpus import Item
from tests.collector.fakes.server import FakeServer, Reply, Request, json_reply

TOKEN = "mastodon-test-token"
DOMAIN = "mastodon.example"


def account(name: str, number: int) -> dict[str, object]:
    return {
        "id": str(100000 + number),
        "username": name,
        "acct": name,
        "display_name": name.title(),
        "locked": False,
        "bot": False,
        "discoverable": True,
        "group": False,
        "created_at": "2022-11-01T00:00:00.000Z",
        "note": "<p>Just a patient</p>",
        "url": f"https://{DOMAIN}/@{name}",
        "avatar": f"https://{DOMAIN}/avatars/original/missing.png",
        "avatar_static": f"https://{DOMAIN}/avatars/original/missing.png",
        "header": f"https://{DOMAIN}/headers/original/missing.png",
        "header_static": f"https://{DOMAIN}/headers/original/missing.png",
        "followers_count": 3,
        "following_count": 5,
        "statuses_count": 12,
        "last_status_at": "2026-11-20",
        "emojis": [],
        "fields": [],
    }


def mention(acct: str) -> dict[str, object]:
    username, _, domain = acct.partition("@")
    return {
        "id": "777",
        "username": username,
        "acct": acct,
        "url": f"https://{domain or DOMAIN}/@{username}",
    }


def status(item: Item, tag: str) -> dict[str, object]:
    status_id = str(item.mastodon_id())
    mentions = [mention(item.reply_to)] if item.reply_to else []
    return {
        "id": status_id,
        "created_at": item.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "in_reply_to_id": "109999" if item.reply_to else None,
        "in_reply_to_account_id": "777" if item.reply_to else None,
        "sensitive": False,
        "spoiler_text": "",
        "visibility": "public",
        "language": "en",
        "uri": f"https://{DOMAIN}/users/{item.author}/statuses/{status_id}",
        "url": f"https://{DOMAIN}/@{item.author}/{status_id}",
        "replies_count": 0,
        "reblogs_count": 0,
        "favourites_count": 2,
        "edited_at": None,
        "content": f'<p>{html.escape(item.text)} <a href="https://{DOMAIN}/tags/{tag}" class="mention hashtag" '
        f'rel="tag">#<span>{tag}</span></a></p>',
        "reblog": None,
        "application": {"name": "Web", "website": None},
        "account": account(item.author, item.number),
        "media_attachments": [],
        "mentions": mentions,
        "tags": [{"name": tag.lower(), "url": f"https://{DOMAIN}/tags/{tag.lower()}"}],
        "emojis": [],
        "card": None,
        "poll": None,
    }


class FakeMastodon:
    page_size = 40

    def __init__(self, server: FakeServer, items: list[Item] | None = None, tag: str = "NHS") -> None:
        self.items = list(items or [])
        self.tag = tag
        self.sent: dict[int, dict[str, object]] = {}  # fields of an item's status to send otherwise
        server.route("GET", "/api/v1/instance/?", self.instance)
        server.route("GET", "/api/v2/instance/?", self.instance_v2)
        server.route("GET", "/api/v1/timelines/tag/(?P<tag>[^/]+)", self.tag_timeline)
        server.route("GET", "/api/v2/search", self.search)

    def rate_limited(self) -> Reply:
        reset = (datetime.now(UTC) + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        headers = {"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}
        return json_reply({"error": "Too many requests"}, 429, **headers)

    def unauthorized(self) -> Reply:
        return json_reply({"error": "The access token is invalid"}, 401)

    def instance(self, request: Request) -> Reply:
        return json_reply(
            {
                "uri": DOMAIN,
                "title": "Fake Mastodon",
                "short_description": "A test instance",
                "description": "",
                "email": "admin@mastodon.example",
                "version": "4.2.10",
                "urls": {"streaming_api": f"wss://{DOMAIN}"},
                "stats": {"user_count": 10, "status_count": 100, "domain_count": 3},
                "languages": ["en"],
                "registrations": False,
                "approval_required": False,
                "invites_enabled": False,
                "contact_account": None,
                "rules": [],
            }
        )

    def instance_v2(self, request: Request) -> Reply:
        return json_reply(
            {"domain": DOMAIN, "title": "Fake Mastodon", "version": "4.2.10", "api_versions": {}}
        )

    def page(self, request: Request, found: list[Item]) -> Reply:
        since, max_id = request.arg("since_id"), request.arg("max_id")
        if since:
            found = [item for item in found if item.mastodon_id() > int(since)]
        if max_id:
            found = [item for item in found if item.mastodon_id() < int(max_id)]
        found.sort(key=lambda item: item.mastodon_id(), reverse=True)
        return json_reply(
            [
                {**status(item, self.tag), **self.sent.get(item.number, {})}
                for item in found[: min(int(request.arg("limit") or 20), 40)]
            ]
        )

    def tag_timeline(self, request: Request) -> Reply:
        auth = request.headers.get("authorization")
        if auth and auth != f"Bearer {TOKEN}":
            return self.unauthorized()
        if request.match["tag"].lower() != self.tag.lower():  # a hashtag this server has never seen
            return json_reply({"error": "Record not found"}, 404)
        return self.page(request, list(self.items))

    def search(self, request: Request) -> Reply:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return self.unauthorized()
        phrase = (request.arg("q") or "").strip('"').lower()
        statuses = self.page(request, [item for item in self.items if phrase in item.text.lower()])
        return json_reply({"accounts": [], "statuses": statuses.body, "hashtags": []})
