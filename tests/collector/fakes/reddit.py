"""A fake Reddit: the OAuth token endpoint and subreddit search listings.

Shapes from Reddit's API: ``POST /api/v1/access_token`` (basic auth, client_credentials) answers
``{access_token, token_type, expires_in, scope}``; ``GET /r/{subreddits}/search`` answers a
``Listing`` of ``t3`` things with ``after``/``before`` fullnames; rate limits send
``x-ratelimit-used/remaining/reset`` (seconds until the window resets).
"""

from __future__ import annotations

import base64
import re

from tests.collector.fakes.corpus import Item
from tests.collector.fakes.server import FakeServer, Reply, Request, json_reply

CLIENT_ID = "fake-client-id"
CLIENT_SECRET = "fake-client-secret"
ACCESS_TOKEN = "fake-reddit-access-token"
TOKEN_PATH = "/api/v1/access_token"
SEARCH_PATH = "/r/[^/]+/search/?"


def submission(item: Item, subreddit: str) -> dict[str, object]:
    base36 = numbers_to_base36(item.number + 1_000_000)
    return {
        "kind": "t3",
        "data": {
            "id": base36,
            "name": f"t3_{base36}",
            "title": item.text,
            "selftext": "Anyone else had this?",
            "selftext_html": '<!-- SC_OFF --><div class="md"><p>Anyone else had this?</p></div>',
            "author": item.author,
            "author_fullname": f"t2_{numbers_to_base36(item.number + 5000)}",
            "created_utc": item.created_at.timestamp(),
            "created": item.created_at.timestamp(),
            "permalink": f"/r/{subreddit}/comments/{base36}/post_{item.number}/",
            "url": f"https://www.reddit.com/r/{subreddit}/comments/{base36}/post_{item.number}/",
            "subreddit": subreddit,
            "subreddit_name_prefixed": f"r/{subreddit}",
            "subreddit_id": "t5_2qh1i",
            "is_self": True,
            "over_18": False,
            "score": 3,
            "num_comments": 1,
            "stickied": False,
            "locked": False,
        },
    }


def numbers_to_base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while number:
        number, rest = divmod(number, 36)
        text = digits[rest] + text
    return text or "0"


class FakeReddit:
    page_size = 100

    def __init__(self, server: FakeServer, items: list[Item] | None = None) -> None:
        self.items = list(items or [])
        server.route("POST", TOKEN_PATH, self.token)
        server.route("GET", "/r/(?P<subs>[^/]+)/search/?", self.search)

    def rate_limited(self) -> Reply:
        headers = {"x-ratelimit-used": "100", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "240"}
        return Reply(
            429,
            b'{"message": "Too Many Requests", "error": 429}',
            {"Content-Type": "application/json", **headers},
        )

    def unauthorized(self) -> Reply:
        return json_reply({"message": "Unauthorized", "error": 401}, 401)

    def token(self, request: Request) -> Reply:
        expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            return self.unauthorized()
        if request.form().get("grant_type") != "client_credentials":
            return json_reply({"error": "unsupported_grant_type"})
        return json_reply(
            {"access_token": ACCESS_TOKEN, "token_type": "bearer", "expires_in": 86400, "scope": "*"}
        )

    def search(self, request: Request) -> Reply:
        if request.headers.get("authorization") != f"bearer {ACCESS_TOKEN}":
            return json_reply(
                {"message": "Unauthorized", "error": 401},
                401,
                **{"www-authenticate": 'Bearer realm="reddit", error="invalid_token"'},
            )
        terms = [term.lower() for term in re.findall(r'"([^"]+)"', request.arg("q") or "")]
        found = [item for item in self.items if any(term in item.text.lower() for term in terms)]
        found.sort(key=lambda item: item.created_at, reverse=True)
        subreddit = request.match["subs"].split("+")[0]
        things = [submission(item, subreddit) for item in found]
        after = request.arg("after")
        if after:
            names = [thing["data"]["name"] for thing in things]  # type: ignore[index]
            things = things[names.index(after) + 1 :] if after in names else []
        limit = min(int(request.arg("limit") or 25), self.page_size)
        page = things[:limit]
        next_after = page[-1]["data"]["name"] if len(things) > limit else None  # type: ignore[index]
        return json_reply(
            {
                "kind": "Listing",
                "data": {
                    "after": next_after,
                    "dist": len(page),
                    "modhash": "",
                    "geo_filter": "",
                    "children": page,
                    "before": None,
                },
            },
            **{"x-ratelimit-used": "3", "x-ratelimit-remaining": "97", "x-ratelimit-reset": "400"},
        )
