"""Mastodon through Mastodon.py: hashtag timelines on configured instances, and full-text search.

Hashtag timelines are public on most instances. Full-text search of statuses (``/api/v2/search``)
needs an access token, and finds only posts the server has indexed (its own and those of accounts
that opted in to search), so it runs on the first instance of ``sources.mastodon.instances`` —
the one the token belongs to — for each registered name.

A hashtag nobody on an instance has used yet is answered with 404 "Record not found": an empty
timeline. Any other failure of one query is reported, and the other queries are still read
(``collector.sources.base.sweep``).
An answer that is not a list of statuses fails its query; a status that cannot be read (no
account, no date) is skipped with an error naming it, and the others are read.

Status ids are time-ordered (milliseconds << 16); Mastodon.py turns a start time into such an id,
so a first read starts at ``start`` without listing older posts. A status keeps its ActivityPub
URI as its id, so the same post seen through two instances is stored once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
from mastodon import (
    Mastodon,
    MastodonAPIError,
    MastodonError,
    MastodonNetworkError,
    MastodonNotFoundError,
    MastodonRatelimitError,
    MastodonServerError,
    MastodonUnauthorizedError,
)

from collector.http import describe, http_session
from collector.post import Post
from collector.sources.base import (
    Batch,
    Context,
    Page,
    SourceError,
    State,
    each_post,
    html_to_text,
    reset_time,
    retrying,
    sweep_queries,
)

PAGE_SIZE = 40


class MastodonSource:
    name = "mastodon"

    def __init__(self, context: Context) -> None:
        self.settings = context.settings
        options = context.options(self.name)
        token = options.access_token.get() or None
        instances = [checked_instance(url) for url in options.instances]
        self.clients = {
            instance: self.client(instance, token if index == 0 else None)
            for index, instance in enumerate(instances)
        }
        self.answering: set[str] = set()  # instances seen to answer as Mastodon servers
        home = instances[0]
        self.queries = [
            f"{instance} #{tag.lstrip('#')}" for instance in instances for tag in options.hashtags
        ]
        if token and options.search:
            self.queries += [f'{home} "{name}"' for name in context.names]

    def client(self, instance: str, token: str | None) -> Mastodon:
        return Mastodon(
            api_base_url=instance,
            access_token=token,
            session=http_session(self.settings),
            ratelimit_method="throw",
            request_timeout=float(self.settings.collector.timeout_seconds),
            user_agent=self.settings.collector.user_agent,
            version_check_mode="none",
        )

    def fetch(self, state: State) -> Batch:
        return sweep_queries(self.settings, self.queries, state, self.fetch_page)

    def fetch_page(self, query: str, since: str | None, cursor: str | None, start: datetime) -> Page:
        instance, _, term = query.partition(" ")
        api = self.clients[instance]

        def read() -> list[Any]:
            if term.startswith("#"):
                try:
                    return api.timeline_hashtag(
                        term[1:], since_id=since or start, max_id=cursor, limit=PAGE_SIZE
                    )
                except MastodonNotFoundError:
                    if not self.is_mastodon(instance):
                        raise
                    return []  # a hashtag no post on this server has used yet: no posts
            return api.search_v2(
                term, resolve=False, result_type="statuses", max_id=cursor, limit=PAGE_SIZE
            ).statuses

        statuses = retrying(self.settings, lambda: listed(read()), lambda exc: classify_error(exc, api))
        fresh = [s for s in statuses if is_newer(s, since, start)]
        originals = [status for status in fresh if not status.get("reblog")]
        posts = each_post(self.name, originals, lambda status: to_post(status, instance))
        full_page = len(statuses) == PAGE_SIZE and len(fresh) == len(statuses)
        return Page(
            posts,
            cursor=str(statuses[-1]["id"]) if full_page else None,
            newest=str(fresh[0]["id"]) if fresh else None,
        )

    def is_mastodon(self, instance: str) -> bool:
        """Whether ``instance`` answers as a Mastodon server (``GET /api/v1/instance``), asked
        once per source. Mastodon answers the tag timeline of a hashtag it has never seen with
        404 ``{"error": "Record not found"}`` (docs.joinmastodon.org/methods/timelines/#tag), an
        empty timeline; a wrong instance URL also gives 404, and must not read as nothing found.
        Mastodon.py drops that JSON error for timelines, so the instance is asked instead."""
        if instance not in self.answering:
            try:
                self.clients[instance].instance_v1()
            except (MastodonError, requests.RequestException):
                return False
            self.answering.add(instance)
        return True


def checked_instance(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise SourceError(
            f"sources.mastodon.instances: {url!r} is not an instance URL such as https://mastodon.social",
            permanent=True,
        )
    return url.strip().rstrip("/")


def listed(answer: Any) -> list[Any]:
    """The statuses of an answer, which must be a list of them (objects): a server (or a proxy in
    front of it) answering 200 with ``null`` or an object failed the whole poll with a TypeError."""
    if not isinstance(answer, list) or not all(isinstance(status, dict) for status in answer):
        raise SourceError(
            f"Mastodon answered with something other than a list of statuses: {type(answer).__name__}"
        )
    return answer


def is_newer(status: Any, since: str | None, start: datetime) -> bool:
    """Search cannot be asked for posts after a marker, so older ones are dropped here. A status
    without a date counts as new: ``to_post`` then reports it, and the others are read."""
    if since:
        return id_order(status["id"]) > id_order(since)
    created = status.get("created_at")
    return not isinstance(created, datetime) or created >= start


def id_order(status_id: Any) -> tuple[int, str]:
    """Where a status id sorts. Ids are strings: numbers on Mastodon, but not on every server
    with Mastodon's API (Akkoma and Pleroma flake ids, GoToSocial ULIDs, each of one length), where
    ``int()`` failed every poll after the first. Shorter first, then by character, orders both."""
    text = str(status_id)
    return len(text), text


def to_post(status: Any, instance: str) -> Post:
    account = status["account"]
    domain = urlsplit(instance).hostname or ""
    acct = qualified(account["acct"], domain)
    replied = next(
        (
            qualified(m["acct"], domain)
            for m in status.get("mentions") or []
            if str(m["id"]) == str(status.get("in_reply_to_account_id"))
        ),
        None,
    )
    text = html_to_text(status["content"] or "")
    if status.get("spoiler_text"):
        text = f"{status['spoiler_text']}\n{text}"
    return Post(
        source="mastodon",
        external_id=status["uri"],
        url=status.get("url") or status["uri"],
        author=f"@{acct}",
        author_id=str(account["id"]),
        created_at=status["created_at"].astimezone(UTC),
        text=text,
        lang=status.get("language"),
        conversation_id=str(status["in_reply_to_id"]) if status.get("in_reply_to_id") else None,
        in_reply_to=f"@{replied}" if replied else None,
        extra={"instance": instance},
    )


def qualified(acct: str, domain: str) -> str:
    """``user@domain`` for every account: Mastodon leaves the domain off accounts of the server
    asked, and a bare ``drpriya`` would be taken for the X or Bluesky handle of someone else."""
    return acct if "@" in acct else f"{acct}@{domain}"


def classify_error(exc: Exception, api: Mastodon) -> SourceError:
    if isinstance(exc, MastodonRatelimitError):
        reset = reset_time(api.ratelimit_reset) or datetime.now(UTC) + timedelta(minutes=5)
        return SourceError(f"Mastodon rate limit reached; resets at {reset:%H:%M} UTC", retry_after=reset)
    if isinstance(exc, MastodonUnauthorizedError):
        return SourceError(f"Mastodon refused the access token: {api_message(exc)}", permanent=True)
    if isinstance(exc, MastodonNotFoundError):
        return SourceError(
            f"Mastodon has no such endpoint (check the instance URL): {api_message(exc)}", permanent=True
        )
    if isinstance(exc, MastodonNetworkError | requests.RequestException):
        cause = exc.__context__ or exc
        return SourceError(f"Mastodon could not be reached: {describe(cause)}")
    if isinstance(exc, MastodonServerError):
        return SourceError(f"Mastodon answered with a server error: {api_message(exc)}")
    if isinstance(exc, MastodonAPIError) and len(exc.args) > 1 and exc.args[1] in (403, 422):
        return SourceError(f"Mastodon refused the request: {api_message(exc)}", permanent=True)
    return SourceError(f"Mastodon answered unexpectedly: {type(exc).__name__}: {api_message(exc)}")


def api_message(exc: Exception) -> str:
    parts = [str(arg) for arg in exc.args[1:] if arg] if isinstance(exc, MastodonAPIError) else [str(exc)]
    return " ".join(parts) or type(exc).__name__
