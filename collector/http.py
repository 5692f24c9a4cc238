"""The one way sources reach the network: a ``requests`` session with timeouts and redirection.

Every source builds its client library on a session from ``http_session`` (tweepy, Mastodon.py
and PRAW accept one; feeds and Care Opinion use it directly). The session

* caps every request's timeout at the collector's (``requests`` has no default timeout, tweepy
  never passes one, and PRAW always passes 16 seconds whatever it is configured with): a hung
  server must fail the poll, not stop the collector;
* sends Vigil's User-Agent;
* can redirect a hard-coded production host to a configured base URL. tweepy always calls
  ``https://api.twitter.com``; mounting a ``Redirect`` adapter for that prefix sends the same
  requests to ``sources.x.base_url`` (a proxy, or a fake server on loopback in the tests).

The one exception is Bluesky: the atproto SDK is built on httpx, not requests, so it gets the
same timeout, User-Agent and base URL through its own options (``Client(base_url)``,
``Request(timeout=...)``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from vigil.settings import Settings


class VigilAdapter(HTTPAdapter):
    """Sends requests with at most Vigil's timeout, optionally rewriting their URL prefix."""

    def __init__(self, timeout: float, rewrite: tuple[str, str] | None = None) -> None:
        super().__init__()
        self.timeout = timeout
        self.rewrite = rewrite

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs["timeout"] = cap(kwargs.get("timeout"), self.timeout)
        if self.rewrite and request.url and request.url.startswith(self.rewrite[0]):
            request.url = self.rewrite[1] + request.url[len(self.rewrite[0]) :]
        return super().send(request, **kwargs)


def describe(exc: BaseException) -> str:
    """A short reason for a failed request (requests' own messages run to hundreds of characters)."""
    request = exc.request if isinstance(exc, requests.RequestException) else None
    where = f" ({urlsplit(str(request.url)).netloc})" if request is not None and request.url else ""
    if isinstance(exc, requests.Timeout):
        return f"timed out{where}"
    if isinstance(exc, requests.ConnectionError):
        return f"could not connect{where}"
    return f"{type(exc).__name__}: {exc}"


def cap(timeout: Any, limit: float) -> Any:
    """The smaller of a requested timeout (a number, a (connect, read) pair, or None) and ``limit``."""
    if isinstance(timeout, tuple):
        return tuple(limit if part is None else min(part, limit) for part in timeout)
    return limit if timeout is None else min(timeout, limit)


def http_session(settings: Settings, redirect: tuple[str, str] | None = None) -> requests.Session:
    """A session for one source; ``redirect=(production_prefix, base_url)`` re-points a fixed host."""
    session = requests.Session()
    timeout = float(settings.collector.timeout_seconds)
    session.headers["User-Agent"] = settings.collector.user_agent
    session.mount("http://", VigilAdapter(timeout))
    session.mount("https://", VigilAdapter(timeout))
    if redirect and redirect[0].rstrip("/") != redirect[1].rstrip("/"):
        prefix, base = redirect[0].rstrip("/"), redirect[1].rstrip("/")
        session.mount(prefix + "/", VigilAdapter(timeout, (prefix, base)))
    return session
