"""A fake X API v2 recent search (``GET /2/tweets/search/recent``) with the real JSON shapes.

Shapes from the X API v2 reference: ``data`` (Post objects with ``id``, ``text``,
``edit_history_tweet_ids`` and the requested ``tweet.fields``), ``includes.users`` for the
``author_id`` and ``in_reply_to_user_id`` expansions, ``meta`` with ``newest_id``, ``oldest_id``,
``result_count`` and ``next_token``; errors as RFC 7807 problems; 429 with ``x-rate-limit-*``, and
429 ``UsageCapExceeded`` (period ``Monthly``) once the project's monthly usage cap is spent.

An edit is a new post with a new id whose ``edit_history_tweet_ids`` lists every version, oldest
first. A post over 280 characters comes cut short in ``text``, whole in ``note_tweet``
(``{"text": ..., "entities": {...}}``) when ``tweet.fields`` asks for it.
"""

from __future__ import annotations

import base64
import re
import time
from datetime import UTC, datetime, timedelta

from tests.collector.fakes.corpus import Item
from tests.collector.fakes.server import FakeServer, Reply, Request, json_reply

TOKEN = "test-bearer-token"
PATH = "/2/tweets/search/recent"
TEXT_LIMIT = 280


def problem(status: int, title: str, detail: str) -> dict[str, object]:
    return {"title": title, "detail": detail, "type": "about:blank", "status": status}


class FakeX:
    def __init__(self, server: FakeServer, items: list[Item] | None = None) -> None:
        self.server = server
        self.items: list[Item] = list(items or [])
        self.histories: dict[int, list[str]] = {}  # an edit's item number -> its edit history
        self.sent: dict[int, dict[str, object]] = {}  # fields of an item's post to send otherwise
        server.route("GET", PATH, self.search)

    def edit(self, original: Item, text: str) -> Item:
        """Edit ``original`` a minute later: the edit is served as a post of its own."""
        edit = Item(
            max(item.number for item in self.items) + 1,
            original.created_at + timedelta(minutes=1),
            text,
            original.author,
            original.reply_to,
        )
        self.histories[edit.number] = [*self.history(original), str(edit.snowflake())]
        self.items.append(edit)
        return edit

    def history(self, item: Item) -> list[str]:
        """``edit_history_tweet_ids``: the ids of every version up to this one, oldest first."""
        return self.histories.get(item.number, [str(item.snowflake())])

    # Faults in this API's own words -----------------------------------------------------------

    def rate_limited(self, reset_in: int = 600) -> Reply:
        reset = int(time.time()) + reset_in
        headers = {
            "x-rate-limit-limit": "450",
            "x-rate-limit-remaining": "0",
            "x-rate-limit-reset": str(reset),
        }
        return json_reply(problem(429, "Too Many Requests", "Too Many Requests"), 429, **headers)

    def usage_capped(self) -> Reply:
        """The project's monthly usage cap: a 429 whose rate-limit headers still show requests left
        (shape from xdevplatform/xdk#25 and g8rswimmer/go-twitter#108)."""
        reset = int(time.time()) + 900
        headers = {
            "x-rate-limit-limit": "450",
            "x-rate-limit-remaining": "449",
            "x-rate-limit-reset": str(reset),
        }
        body = {
            "account_id": "1234567890",
            "product_name": "standard-basic",
            "title": "UsageCapExceeded",
            "period": "Monthly",
            "scope": "Product",
            "detail": "Usage cap exceeded: Monthly product cap",
            "type": "https://api.twitter.com/2/problems/usage-capped",
        }
        return json_reply(body, 429, **headers)

    def unauthorized(self) -> Reply:
        return json_reply(problem(401, "Unauthorized", "Unauthorized"), 401)

    # The endpoint ------------------------------------------------------------------------------

    def search(self, request: Request) -> Reply:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return self.unauthorized()
        query = request.arg("query") or ""
        found = [item for item in self.items if matches(query, item.text)]
        if request.arg("since_id"):
            found = [item for item in found if item.snowflake() > int(request.arg("since_id") or 0)]
        elif request.arg("start_time"):
            start = datetime.fromisoformat((request.arg("start_time") or "").replace("Z", "+00:00"))
            found = [item for item in found if item.created_at >= start]
        found.sort(key=lambda item: item.snowflake(), reverse=True)
        size = int(request.arg("max_results") or 10)
        if not 10 <= size <= 100:
            return json_reply(problem(400, "Invalid Request", "max_results out of range"), 400)
        offset = int(base64.b64decode(request.arg("next_token") or "MA==").decode())
        page = found[offset : offset + size]
        if not page:
            return json_reply({"meta": {"result_count": 0}})
        fields = set((request.arg("tweet.fields") or "").split(","))
        meta: dict[str, object] = {
            "newest_id": str(page[0].snowflake()),
            "oldest_id": str(page[-1].snowflake()),
            "result_count": len(page),
        }
        if offset + size < len(found):
            meta["next_token"] = base64.b64encode(str(offset + size).encode()).decode()
        users = {}
        for item in page:
            users[user_id(item.author)] = user(item.author)
            if item.reply_to:
                users[user_id(item.reply_to)] = user(item.reply_to)
        return json_reply(
            {
                "data": [
                    {**tweet(item, fields, self.history(item)), **self.sent.get(item.number, {})}
                    for item in page
                ],
                "includes": {"users": list(users.values())},
                "meta": meta,
            }
        )


def matches(query: str, text: str) -> bool:
    """Any quoted phrase or @handle of the query appears in the text (the X query planner ORs them)."""
    terms = re.findall(r'"([^"]+)"', query) + re.findall(r"(@\w+)", query)
    return not terms or any(term.lower() in text.lower() for term in terms)


def user_id(name: str) -> str:
    return str(1000 + sum(ord(char) for char in name))


def user(name: str) -> dict[str, str]:
    return {"id": user_id(name), "name": name.title(), "username": name}


def tweet(item: Item, fields: set[str], history: list[str]) -> dict[str, object]:
    data: dict[str, object] = {
        "id": str(item.snowflake()),
        "text": item.text if len(item.text) <= TEXT_LIMIT else item.text[: TEXT_LIMIT - 1] + "…",
        "edit_history_tweet_ids": history,
    }
    optional: dict[str, object] = {
        "author_id": user_id(item.author),
        "created_at": item.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "conversation_id": str(item.snowflake()),
        "lang": "en",
    }
    if len(item.text) > TEXT_LIMIT:
        optional["note_tweet"] = note_tweet(item.text)
    if item.reply_to:
        optional["in_reply_to_user_id"] = user_id(item.reply_to)
        optional["referenced_tweets"] = [{"type": "replied_to", "id": "1460323737035677698"}]
    data.update({key: value for key, value in optional.items() if key in fields})
    return data


def note_tweet(text: str) -> dict[str, object]:
    """The whole of a long post, with the entities X finds in it (here only its @mentions)."""
    mentions = [
        {"start": found.start(), "end": found.end(), "username": found.group(1)}
        for found in re.finditer(r"@(\w+)", text)
    ]
    return {"text": text, "entities": {"mentions": mentions}} if mentions else {"text": text}
