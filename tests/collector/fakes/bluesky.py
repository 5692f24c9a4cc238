"""A fake Bluesky PDS/AppView: createSession, refreshSession, searchPosts and getProfiles.

Shapes from the lexicons (``com.atproto.server.createSession``: accessJwt, refreshJwt, handle,
did; ``app.bsky.feed.searchPosts``: cursor, hitsTotal, posts of ``app.bsky.feed.defs#postView``
with uri, cid, author, record, indexedAt; ``app.bsky.actor.getProfiles``: profiles). Errors are
XRPC errors ``{"error": ..., "message": ...}``; rate limits send ``ratelimit-*`` headers. An
account whose handle no longer verifies has the handle ``handle.invalid`` in post views and profiles.
"""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime

from tests.collector.fakes.corpus import Item
from tests.collector.fakes.server import FakeServer, Reply, Request, json_reply

HANDLE = "vigil-monitor.bsky.social"
PASSWORD = "abcd-efgh-ijkl-mnop"
ACCOUNT_DID = "did:plc:vigilmonitor000000000000"
SEARCH = "/xrpc/app.bsky.feed.searchPosts"
CREATE_SESSION = "/xrpc/com.atproto.server.createSession"


def jwt(subject: str, scope: str, lifetime: int) -> str:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    now = int(time.time())
    claims = {"scope": scope, "sub": subject, "iat": now, "exp": now + lifetime, "aud": "did:web:fake.pds"}
    return f"{part({'typ': 'at+jwt', 'alg': 'ES256K'})}.{part(claims)}.c2lnbmF0dXJl"


def xrpc_error(status: int, error: str, message: str, **headers: str) -> Reply:
    return json_reply({"error": error, "message": message}, status, **headers)


def did_of(name: str) -> str:
    return "did:plc:" + (name.replace(".", "").replace("-", "") + "x" * 24)[:24]


def handle_of(name: str) -> str:
    return f"{name}.bsky.social"


class FakeBluesky:
    page_size = 10

    def __init__(self, server: FakeServer, items: list[Item] | None = None) -> None:
        self.server = server
        self.items = list(items or [])
        self.access_lifetime = 7200
        self.sessions_created = 0
        self.valid_access: set[str] = set()
        self.valid_refresh: set[str] = set()
        self.unverified: set[str] = set()  # accounts whose handle no longer verifies
        self.records: dict[int, dict[str, object]] = {}  # fields as an item's author's client wrote them
        server.route("POST", CREATE_SESSION, self.create_session)
        server.route("POST", "/xrpc/com.atproto.server.refreshSession", self.refresh_session)
        server.route("GET", SEARCH, self.search)
        server.route("GET", "/xrpc/app.bsky.actor.getProfiles", self.get_profiles)

    def handle(self, name: str) -> str:
        """What the AppView says an account's handle is: ``handle.invalid`` once it fails to verify."""
        return "handle.invalid" if name in self.unverified else handle_of(name)

    def rate_limited(self) -> Reply:
        reset = str(int(time.time()) + 300)
        headers = {"ratelimit-limit": "3000", "ratelimit-remaining": "0", "ratelimit-reset": reset}
        return xrpc_error(429, "RateLimitExceeded", "Rate Limit Exceeded", **headers)

    def unauthorized(self) -> Reply:
        return xrpc_error(401, "AuthenticationRequired", "Invalid identifier or password")

    def issue(self) -> dict[str, str]:
        access = jwt(ACCOUNT_DID, "com.atproto.appPass", self.access_lifetime)
        refresh = jwt(ACCOUNT_DID, "com.atproto.refresh", 90 * 86400)
        self.valid_access.add(access)
        self.valid_refresh.add(refresh)
        return {
            "accessJwt": access,
            "refreshJwt": refresh,
            "handle": HANDLE,
            "did": ACCOUNT_DID,
            "active": True,
        }

    def create_session(self, request: Request) -> Reply:
        body = request.json()
        if body.get("identifier") != HANDLE or body.get("password") != PASSWORD:
            return self.unauthorized()
        self.sessions_created += 1
        return json_reply({**self.issue(), "email": "ops@vigil.example", "emailConfirmed": True})

    def refresh_session(self, request: Request) -> Reply:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if token not in self.valid_refresh:
            return xrpc_error(400, "ExpiredToken", "Token has expired")
        self.valid_refresh.discard(token)
        return json_reply(self.issue())

    def authorised(self, request: Request) -> bool:
        return request.headers.get("authorization", "").removeprefix("Bearer ") in self.valid_access

    def search(self, request: Request) -> Reply:
        if not self.authorised(request):
            return xrpc_error(401, "AuthenticationRequired", "Authentication Required")
        phrase = (request.arg("q") or "").strip('"').lower()
        found = [item for item in self.items if phrase in item.text.lower()]
        since = request.arg("since")
        if since:
            start = datetime.fromisoformat(since.replace("Z", "+00:00"))
            found = [item for item in found if item.created_at >= start]
        found.sort(key=lambda item: item.created_at, reverse=True)
        offset = int(request.arg("cursor") or 0)
        size = min(int(request.arg("limit") or 25), self.page_size)
        page = found[offset : offset + size]
        written = self.records
        posts = [post_view(item, self.handle(item.author), written.get(item.number, {})) for item in page]
        body: dict[str, object] = {"posts": posts, "hitsTotal": len(found)}
        if offset + size < len(found):
            body["cursor"] = str(offset + size)
        return json_reply(body)

    def get_profiles(self, request: Request) -> Reply:
        if not self.authorised(request):
            return xrpc_error(401, "AuthenticationRequired", "Authentication Required")
        actors = request.query.get("actors", [])
        names = {did_of(item.reply_to): item.reply_to for item in self.items if item.reply_to}
        profiles = [
            {"did": did, "handle": self.handle(names[did]), "displayName": names[did].title()}
            for did in actors
            if did in names
        ]
        return json_reply({"profiles": profiles})


def post_view(item: Item, handle: str, written: dict[str, object] | None = None) -> dict[str, object]:
    did = did_of(item.author)
    rkey = f"3k{item.number:011d}"
    stamp = item.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    record: dict[str, object] = {
        "$type": "app.bsky.feed.post",
        "text": item.text,
        "createdAt": stamp,
        "langs": ["en"],
        **(written or {}),
    }
    if item.reply_to:
        parent = {"uri": f"at://{did_of(item.reply_to)}/app.bsky.feed.post/3kparent00001", "cid": cid(0)}
        record["reply"] = {"root": parent, "parent": parent}
    return {
        "uri": f"at://{did}/app.bsky.feed.post/{rkey}",
        "cid": cid(item.number),
        "author": {
            "did": did,
            "handle": handle,
            "displayName": item.author.title(),
            "labels": [],
        },
        "record": record,
        "replyCount": 0,
        "repostCount": 0,
        "likeCount": 1,
        "quoteCount": 0,
        "indexedAt": stamp,
        "labels": [],
    }


def cid(number: int) -> str:
    return f"bafyreig{number:052d}"[:59]
