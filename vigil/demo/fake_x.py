"""A local stand-in for the X API v2 recent search, so the demo runs the real tweepy code path offline.

It serves ``GET /2/tweets/search/recent`` on 127.0.0.1 with the real response shapes (``data``,
``includes.users``, ``meta`` with ``newest_id``/``oldest_id``/``result_count``/``next_token``,
``x-rate-limit-*`` headers) and evaluates the query the way X does: quoted phrases and words
matched on word boundaries, ``@handle`` (mentions and replies), implicit AND, ``OR``, parentheses,
``-`` negation, and the ``is:retweet``/``lang:`` operators. So a query that is too broad or too
narrow behaves here as it would on X.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

SEARCH_PATH = "/2/tweets/search/recent"
_TOKEN = re.compile(r'"[^"]*"|\(|\)|-?[^\s()"]+|-(?=[("])')
_WORD = re.compile(r"[@#]?\w+")
_EPOCH_MS = 1288834974657  # X's Snowflake epoch


@dataclass(frozen=True)
class Tweet:
    """One post the fake server can return."""

    id: int
    text: str
    author: str  # username without @
    created_at: datetime
    in_reply_to: str | None = None  # username without @
    lang: str = "en"
    is_retweet: bool = False

    def words(self) -> list[str]:
        return [word.lower() for word in _WORD.findall(self.text)]


def snowflake(moment: datetime, sequence: int) -> int:
    """An X post id for a time: ids sort by time, as X's do."""
    return ((int(moment.timestamp() * 1000) - _EPOCH_MS) << 22) + sequence


# --- the query language -------------------------------------------------------------------------

Predicate = Callable[[Tweet], bool]


class QueryError(ValueError):
    """The query is not valid X search syntax."""


def compile_query(query: str) -> Predicate:
    """Turn an X search query into a predicate on posts."""
    tokens = _TOKEN.findall(query)
    predicate, rest = _parse_or(tokens)
    if rest:
        raise QueryError(f"unexpected {rest[0]!r} in query")
    return predicate


def _parse_or(tokens: list[str]) -> tuple[Predicate, list[str]]:
    options = []
    predicate, tokens = _parse_and(tokens)
    options.append(predicate)
    while tokens and tokens[0] == "OR":
        predicate, tokens = _parse_and(tokens[1:])
        options.append(predicate)
    return (options[0] if len(options) == 1 else lambda t: any(p(t) for p in options)), tokens


def _parse_and(tokens: list[str]) -> tuple[Predicate, list[str]]:
    parts: list[Predicate] = []
    while tokens and tokens[0] not in {"OR", ")"}:
        predicate, tokens = _parse_unary(tokens)
        parts.append(predicate)
    if not parts:
        raise QueryError("empty group in query")
    return (parts[0] if len(parts) == 1 else lambda t: all(p(t) for p in parts)), tokens


def _parse_unary(tokens: list[str]) -> tuple[Predicate, list[str]]:
    token = tokens[0]
    if token == "-":
        inner, rest = _parse_unary(tokens[1:])
        return (lambda t: not inner(t)), rest
    if token.startswith("-") and len(token) > 1:
        inner = _term(token[1:])
        return (lambda t: not inner(t)), tokens[1:]
    if token == "(":
        inner, rest = _parse_or(tokens[1:])
        if not rest or rest[0] != ")":
            raise QueryError("unbalanced parentheses in query")
        return inner, rest[1:]
    return _term(token), tokens[1:]


def _term(token: str) -> Predicate:
    if token.startswith('"'):
        phrase = [word.lower() for word in _WORD.findall(token.strip('"'))]
        return lambda t: _contains(t.words(), phrase)
    if token == "is:retweet":
        return lambda t: t.is_retweet
    if token.startswith("lang:"):
        lang = token[5:]
        return lambda t: t.lang == lang
    if token.startswith("@"):
        handle = token.lower()
        return lambda t: handle in t.words() or f"@{t.in_reply_to or ''}".lower() == handle
    word = token.lower()
    return lambda t: word in t.words()


def _contains(words: list[str], phrase: list[str]) -> bool:
    n = len(phrase)
    return n > 0 and any(words[i : i + n] == phrase for i in range(len(words) - n + 1))


# --- the server ---------------------------------------------------------------------------------


class FakeXServer:
    """Serve ``tweets`` as X's recent search on an ephemeral loopback port (a context manager)."""

    def __init__(self, tweets: Iterable[Tweet], bearer_token: str) -> None:
        self.tweets = sorted(tweets, key=lambda tweet: tweet.id, reverse=True)
        self.bearer_token = bearer_token
        self.requests = 0
        self.posts_served = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakeXServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def search(self, params: dict[str, str], authorization: str) -> tuple[int, dict[str, Any]]:
        """Answer one recent-search request as X would."""
        self.requests += 1
        if authorization != f"Bearer {self.bearer_token}":
            return 401, {
                "title": "Unauthorized",
                "type": "about:blank",
                "status": 401,
                "detail": "Unauthorized",
            }
        try:
            matches = compile_query(params.get("query", ""))
        except QueryError as exc:
            return 400, {"title": "Invalid Request", "status": 400, "detail": str(exc)}
        found = [tweet for tweet in self.tweets if matches(tweet) and self._in_window(tweet, params)]
        size = min(max(int(params.get("max_results", "10")), 10), 100)
        offset = int(base64.b64decode(params.get("next_token", "MA==")).decode())
        page = found[offset : offset + size]
        self.posts_served += len(page)
        if not page:
            return 200, {"meta": {"result_count": 0}}
        meta: dict[str, Any] = {
            "newest_id": str(page[0].id),
            "oldest_id": str(page[-1].id),
            "result_count": len(page),
        }
        if offset + size < len(found):
            meta["next_token"] = base64.b64encode(str(offset + size).encode()).decode()
        users = {name: _user(name) for tweet in page for name in (tweet.author, tweet.in_reply_to) if name}
        return 200, {
            "data": [_tweet(t) for t in page],
            "includes": {"users": list(users.values())},
            "meta": meta,
        }

    @staticmethod
    def _in_window(tweet: Tweet, params: dict[str, str]) -> bool:
        if params.get("since_id"):
            return tweet.id > int(params["since_id"])
        if params.get("start_time"):
            start = datetime.fromisoformat(params["start_time"].replace("Z", "+00:00"))
            return tweet.created_at >= start
        return True

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path != SEARCH_PATH:
                    status, body = 404, {"title": "Not Found Error", "status": 404}
                else:
                    params = {key: values[0] for key, values in parse_qs(url.query).items()}
                    status, body = fake.search(params, self.headers.get("Authorization", ""))
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("x-rate-limit-limit", "450")
                self.send_header("x-rate-limit-remaining", str(max(0, 450 - fake.requests)))
                self.send_header("x-rate-limit-reset", str(int(datetime.now(UTC).timestamp()) + 900))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: the demo prints its own summary

        return Handler


def _user_id(name: str) -> str:
    """A stable numeric id per username, as X's are."""
    return str(10**9 + int(hashlib.sha256(name.lower().encode()).hexdigest()[:12], 16) % 10**12)


def _user(name: str) -> dict[str, str]:
    return {"id": _user_id(name), "name": name.replace("_", " ").title(), "username": name}


def _tweet(tweet: Tweet) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": str(tweet.id),
        "text": tweet.text,
        "edit_history_tweet_ids": [str(tweet.id)],
        "author_id": _user_id(tweet.author),
        "created_at": tweet.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "conversation_id": str(tweet.id),
        "lang": tweet.lang,
    }
    if tweet.in_reply_to:
        data["in_reply_to_user_id"] = _user_id(tweet.in_reply_to)
        data["referenced_tweets"] = [{"type": "replied_to", "id": str(tweet.id - 1)}]
    return data
