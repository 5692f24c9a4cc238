"""A fake Reddit: the OAuth token endpoint, subreddit search and subreddit comment listings.

Shapes from Reddit's API: ``POST /api/v1/access_token`` (basic auth, client_credentials) answers
``{access_token, token_type, expires_in, scope}``; ``GET /r/{subreddits}/search`` answers a
``Listing`` of ``t3`` things and ``GET /r/{subreddits}/comments`` a ``Listing`` of ``t1`` things
(newest first, with the parent submission's ``link_title``/``link_permalink``/``link_id``, as
Reddit gives them in that listing only), both with ``after``/``before`` fullnames and at most
``limit`` (100) children; rate limits send ``x-ratelimit-used/remaining/reset`` (seconds until
the window resets). Like Reddit, the comment listing stops after ``listing_cap`` items.
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
COMMENTS_PATH = "/r/[^/]+/comments/?"
THREAD = "t3_thread1"  # the submission every fake comment is made in


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


def comment(item: Item, subreddit: str) -> dict[str, object]:
    """A ``t1`` thing as ``/r/{subreddit}/comments`` gives it; ``[deleted]`` authors have no id."""
    base36 = numbers_to_base36(item.number + 2_000_000)
    thread = THREAD.removeprefix("t3_")
    link = f"/r/{subreddit}/comments/{thread}/my_gp_surgery_today/"
    deleted = item.author == "[deleted]"
    data: dict[str, object] = {
        "id": base36,
        "name": f"t1_{base36}",
        "body": item.text,
        "body_html": f'<div class="md"><p>{item.text}</p></div>',
        "author": item.author,
        "created_utc": item.created_at.timestamp(),
        "created": item.created_at.timestamp(),
        "permalink": f"{link}{base36}/",
        "subreddit": subreddit,
        "subreddit_name_prefixed": f"r/{subreddit}",
        "subreddit_id": "t5_2qh1i",
        "subreddit_type": "public",
        "link_id": THREAD,
        "parent_id": item.reply_to or THREAD,
        "link_title": "My GP surgery today",
        "link_author": "throwaway_gp",
        "link_permalink": f"https://www.reddit.com{link}",
        "link_url": f"https://www.reddit.com{link}",
        "num_comments": 12,
        "over_18": False,
        "score": 1,
        "ups": 1,
        "downs": 0,
        "edited": False,
        "is_submitter": False,
        "stickied": False,
        "locked": False,
        "archived": False,
        "distinguished": None,
        "replies": "",
    }
    if not deleted:
        data["author_fullname"] = f"t2_{numbers_to_base36(item.number + 5000)}"
    return {"kind": "t1", "data": data}


def numbers_to_base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while number:
        number, rest = divmod(number, 36)
        text = digits[rest] + text
    return text or "0"


class FakeReddit:
    page_size = 100
    listing_cap = 1000

    def __init__(self, server: FakeServer, items: list[Item] | None = None) -> None:
        self.items = list(items or [])  # submissions
        self.comments: list[Item] = []
        self.without_permalink: set[int] = set()  # item numbers whose thing lacks its permalink
        server.route("POST", TOKEN_PATH, self.token)
        server.route("GET", "/r/(?P<subs>[^/]+)/search/?", self.search)
        server.route("GET", "/r/(?P<subs>[^/]+)/comments/?", self.comment_listing)

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

    def refused(self, request: Request) -> Reply | None:
        if request.headers.get("authorization") == f"bearer {ACCESS_TOKEN}":
            return None
        return json_reply(
            {"message": "Unauthorized", "error": 401},
            401,
            **{"www-authenticate": 'Bearer realm="reddit", error="invalid_token"'},
        )

    def search(self, request: Request) -> Reply:
        if refusal := self.refused(request):
            return refusal
        terms = [term.lower() for term in re.findall(r'"([^"]+)"', request.arg("q") or "")]
        found = [item for item in self.items if any(term in item.text.lower() for term in terms)]
        found.sort(key=lambda item: item.created_at, reverse=True)
        subreddit = request.match["subs"].split("+")[0]
        return self.listing(request, [submission(item, subreddit) for item in found])

    def comment_listing(self, request: Request) -> Reply:
        """Every comment of the subreddits, whatever it says, newest first, up to the cap."""
        if refusal := self.refused(request):
            return refusal
        newest = sorted(self.comments, key=lambda item: item.created_at, reverse=True)
        subreddit = request.match["subs"].split("+")[0]
        things = [comment(item, subreddit) for item in newest[: self.listing_cap]]
        for thing, item in zip(things, newest, strict=False):
            if item.number in self.without_permalink:
                del thing["data"]["permalink"]  # type: ignore[attr-defined]
        return self.listing(request, things)

    def listing(self, request: Request, things: list[dict[str, object]]) -> Reply:
        """One page of ``things`` after the ``after`` fullname, at most ``limit`` long."""
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
