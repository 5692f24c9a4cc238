"""Bluesky post search (``app.bsky.feed.searchPosts``, newest first) through the atproto SDK.

Search needs a logged-in account (an app password). ``createSession`` is rate-limited (30 per
5 minutes, 300 a day per account), so the session is reused: kept by the client for the life of
the process, and exported into the checkpoint so that the next process (or ``vigil collect
--once`` from cron) resumes it instead of logging in again. The SDK refreshes it when it ages; a
session that can no longer be refreshed is replaced by one fresh login.

An account whose handle no longer verifies comes as ``handle.invalid``: it is named by its DID.
A post's ``createdAt`` is written by its author's client and may be anything: a post is dated by
the time Bluesky sorts it by (``sort_time``), its indexing time when ``createdAt`` is no time or
is later.

searchPosts has no OR operator: each registered name is its own query. The ``since`` marker is
the newest post's sort time minus ``OVERLAP``, because posts can be indexed a little after the
time they sort by; the few posts read twice are skipped by the store.
"""

from __future__ import annotations

import functools
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from atproto import Client, models
from atproto_client.exceptions import (
    AtProtocolError,
    BadRequestError,
    LoginRequiredError,
    NetworkError,
    RateLimitExceededError,
    UnauthorizedError,
)
from atproto_client.request import Request

from collector.post import Post
from collector.sources.base import (
    Batch,
    Context,
    Page,
    SourceError,
    State,
    each_post,
    parse_time,
    retrying,
    sweep_queries,
)

log = logging.getLogger(__name__)

OVERLAP = timedelta(minutes=10)
PROFILES_PER_REQUEST = 25
# Logged-in clients of this process, by (base URL, handle): a failed poll keeps its session.
_clients: dict[tuple[str, str], Client] = {}


class BlueskySource:
    name = "bluesky"

    def __init__(self, context: Context) -> None:
        self.settings = context.settings
        self.options = context.options(self.name)
        self.queries = [f'"{name}"' for name in context.names]
        self.key = (self.options.base_url, self.options.handle)
        self.client: Client | None = _clients.get(self.key)

    def fetch(self, state: State) -> Batch:
        try:
            self.connect(state.get("session"))
        except SourceError as exc:
            return Batch(posts=[], state=state, error=exc)
        batch = sweep_queries(self.settings, self.queries, state, self.fetch_page)
        batch.state["session"] = self.saved_session()
        return batch

    def connect(self, saved: dict[str, str] | None) -> None:
        """Reuse this process's client, else the session saved in the checkpoint, else log in."""
        if self.client is not None:
            return
        self.client = Client(self.options.base_url, request=Request(timeout=self.timeout()))
        self.client.request.add_additional_header("User-Agent", self.settings.collector.user_agent)
        try:
            if not saved or saved.get("for") != self.session_owner():
                raise ValueError("no saved session for this account")
            self.client.login(session_string=saved["session"], fetch_bsky_profile=False)
        except Exception:  # none saved, or unreadable: log in (rate-limited, hence the reuse)
            self.login()
        _clients[self.key] = self.client

    def login(self) -> None:
        client = self.client
        assert client is not None
        password = self.options.app_password.get()
        retrying(
            self.settings,
            lambda: client.login(self.options.handle, password, fetch_bsky_profile=False),
            classify_error,
        )
        log.info("logged in to Bluesky as %s", self.options.handle)

    def fetch_page(self, query: str, since: str | None, cursor: str | None, start: datetime) -> Page:
        params: dict[str, Any] = {"q": query, "sort": "latest", "limit": 100}
        params["since"] = (parse_time(since) - OVERLAP if since else start).isoformat()
        if cursor:
            params["cursor"] = cursor
        response = retrying(self.settings, lambda: self.search(params), classify_error)
        posts = self.to_posts(response.posts)
        newest = max((sort_time(view) for view in response.posts), default=None)
        return Page(posts, cursor=response.cursor or None, newest=newest.isoformat() if newest else None)

    def search(self, params: dict[str, Any]) -> models.AppBskyFeedSearchPosts.Response:
        assert self.client is not None
        try:
            return self.client.app.bsky.feed.search_posts(params=params)
        except (UnauthorizedError, BadRequestError, LoginRequiredError) as exc:
            if not is_expired_session(exc):
                raise
            log.info("the saved Bluesky session has expired; logging in again")
            self.login()
            return self.client.app.bsky.feed.search_posts(params=params)

    def to_posts(self, views: list[models.AppBskyFeedDefs.PostView]) -> list[Post]:
        parents = {view.uri: reply_parent_did(view) for view in views}
        handles = self.handles_of({did for did in parents.values() if did})
        return each_post(self.name, views, lambda view: to_post(view, handles.get(parents[view.uri] or "")))

    def handles_of(self, dids: set[str]) -> dict[str, str]:
        """Handles of the accounts replied to: a reply to a doctor's own post is matching context."""
        client = self.client
        assert client is not None
        found: dict[str, str] = {}
        ordered = sorted(dids)
        for offset in range(0, len(ordered), PROFILES_PER_REQUEST):
            params = {"actors": ordered[offset : offset + PROFILES_PER_REQUEST]}
            response = retrying(
                self.settings,
                functools.partial(client.app.bsky.actor.get_profiles, params=params),
                classify_error,
            )
            found.update({profile.did: account(profile.did, profile.handle) for profile in response.profiles})
        return found

    def saved_session(self) -> dict[str, str] | None:
        if self.client is None or self.client._session is None:
            return None
        return {"for": self.session_owner(), "session": self.client.export_session_string()}

    def session_owner(self) -> str:
        return f"{self.options.handle}@{self.options.base_url}"

    def timeout(self) -> httpx.Timeout:
        return httpx.Timeout(float(self.settings.collector.timeout_seconds))


def forget_sessions() -> None:
    """Drop this process's logged-in clients (tests; a changed app password)."""
    _clients.clear()


def sort_time(view: models.AppBskyFeedDefs.PostView) -> datetime:
    """The time Bluesky sorts a post by: when it was created, unless that is after it was indexed."""
    indexed = parse_time(view.indexed_at)
    created = created_time(view)
    return min(created, indexed) if created else indexed


def created_time(view: models.AppBskyFeedDefs.PostView) -> datetime | None:
    """When the post says it was written, if that is a time. ``createdAt`` is whatever the
    author's client wrote ("yesterday", year 0, a date years ahead); read as a time it failed the
    whole poll, and every poll after it, as the post stayed in the search results."""
    created = getattr(view.record, "created_at", None)
    try:
        return parse_time(created) if created else None
    except (ValueError, OverflowError):
        return None


def reply_parent_did(view: models.AppBskyFeedDefs.PostView) -> str | None:
    reply = getattr(view.record, "reply", None)
    if reply is None:
        return None
    return str(reply.parent.uri).removeprefix("at://").split("/", 1)[0]


def to_post(view: models.AppBskyFeedDefs.PostView, replied_handle: str | None) -> Post:
    record = view.record
    rkey = str(view.uri).rsplit("/", 1)[-1]
    reply = getattr(record, "reply", None)
    langs = getattr(record, "langs", None) or []
    return Post(
        source="bluesky",
        external_id=str(view.uri),
        url=f"https://bsky.app/profile/{account(view.author.did, view.author.handle)}/post/{rkey}",
        author=f"@{account(view.author.did, view.author.handle)}",
        author_id=view.author.did,
        created_at=sort_time(view),  # a createdAt ahead of indexing would keep the post "new" for good
        text=getattr(record, "text", "") or "",
        lang=langs[0] if langs else None,
        conversation_id=str(reply.root.uri) if reply else None,
        in_reply_to=f"@{replied_handle}" if replied_handle else None,
        extra={"cid": view.cid},
    )


INVALID_HANDLE = "handle.invalid"


def account(did: str, handle: str) -> str:
    """How a post names its account: the handle, or the DID when the AppView reports the handle
    as ``handle.invalid`` (it no longer verifies; atproto handle spec). That handle gives a dead
    bsky.app link and would make every such account one author; bsky.app/profile/{did} works."""
    return did if handle == INVALID_HANDLE else handle


def is_expired_session(exc: AtProtocolError) -> bool:
    error = getattr(getattr(getattr(exc, "response", None), "content", None), "error", None)
    return isinstance(exc, LoginRequiredError) or error in {"ExpiredToken", "InvalidToken"}


def classify_error(exc: Exception) -> SourceError:
    if isinstance(exc, RateLimitExceededError):
        reset = exc.reset_at or datetime.now(UTC) + timedelta(seconds=exc.retry_after or 300)
        return SourceError(f"Bluesky rate limit reached; resets at {reset:%H:%M} UTC", retry_after=reset)
    if isinstance(exc, UnauthorizedError | LoginRequiredError):
        return SourceError(f"Bluesky refused the login or session: {xrpc_reason(exc)}", permanent=True)
    if isinstance(exc, BadRequestError):
        return SourceError(f"Bluesky rejected the request: {xrpc_reason(exc)}", permanent=True)
    if isinstance(exc, NetworkError):
        return SourceError(f"Bluesky could not be reached: {type(exc).__name__} {xrpc_reason(exc)}")
    if getattr(exc, "response", None) is not None:
        return SourceError(f"Bluesky answered {xrpc_reason(exc)}")
    return SourceError(f"Bluesky answered unexpectedly: {type(exc).__name__}: {xrpc_reason(exc)}")


def xrpc_reason(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if response is None:
        return str(exc.__cause__ or exc) or type(exc).__name__
    content = response.content
    if hasattr(content, "error"):
        return f"{response.status_code} {content.error}: {content.message or ''}".strip()
    return f"{response.status_code}"
