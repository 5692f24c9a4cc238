"""Canonical URLs: one spelling per public page, so that a post found twice is stored once.

The same post reaches Vigil under many URLs: ``http`` or ``https``, ``www.`` or not, tracking
parameters (``utm_*``, ``fbclid``), fragments naming a section, twitter.com / x.com / mobile.twitter.com and
a user name that X ignores, old. / np. / m.reddit.com and redd.it short links, a Google Alerts
redirect wrapping the real address. ``canonical_url`` maps all of them to one string; it never
fetches anything, and it returns None for what is not an http(s) URL.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MAX_LENGTH = 2048
TRACKING_PARAMS = {
    "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "mc_cid", "mc_eid", "igshid",
    "igsh", "_ga", "_gl", "ref_src", "ref_url", "ocid", "cmpid", "ncid", "spm", "si", "mkt_tok",
}  # fmt: skip
TRACKING_PREFIXES = ("utm_", "pk_", "hsa_", "oly_")
X_HOSTS = {"twitter.com", "mobile.twitter.com", "m.twitter.com", "x.com", "mobile.x.com", "m.x.com"}
REDDIT_HOSTS = {
    "reddit.com",
    "old.reddit.com",
    "new.reddit.com",
    "np.reddit.com",
    "m.reddit.com",
    "i.reddit.com",
}
X_STATUS = re.compile(r"^/(?:[^/]+|i(?:/web)?)/status(?:es)?/(\d+)")
REDDIT_THREAD = re.compile(r"^(?:/r/[^/]+)?/comments/([a-z0-9]+)(?:/[^/]*)?(?:/([a-z0-9]+))?/?$", re.I)
UNRESERVED_ESCAPE = re.compile(r"%(2[DdEe]|3[0-9]|[46][1-9A-Fa-f]|[57][0-9Aa]|5[Ff]|7[Ee])")
ANY_ESCAPE = re.compile(r"%[0-9a-fA-F]{2}")


def canonical_url(url: str | None) -> str | None:
    """The canonical spelling of ``url``, or None when it is empty, not http(s) or too long."""
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").rstrip(".").lower()
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in {"http", "https"} or not host:
        return None
    target = _unwrap_redirect(host, parts.path, parts.query)
    if target is not None:
        return canonical_url(target)
    host = host.removeprefix("www.")
    path = _normalise_path(parts.path)
    query, fragment = _clean_query(parts.query), _item_fragment(parts.fragment)
    if host in X_HOSTS:
        host = "x.com"
        if status := X_STATUS.match(path):
            path, query, fragment = f"/i/status/{status.group(1)}", "", ""
    elif host in REDDIT_HOSTS or host == "redd.it":
        host, path, query, fragment = "reddit.com", _reddit_path(host, path), "", ""
    netloc = host if port in (None, 80, 443) else f"{host}:{port}"
    result = urlunsplit(("https", netloc, path, query, fragment))
    return result if len(result) <= MAX_LENGTH else None


def _item_fragment(fragment: str) -> str:
    """A fragment that names one item on the page (``#comment-101``, ``#review-7``: it holds a
    number) is a different post from the page; a section (``#comments``) or a text fragment
    (``#:~:text=...``) is the same page."""
    return fragment if any(c.isdigit() for c in fragment) and not fragment.startswith(":~:") else ""


def unwrap_redirect(url: str) -> str:
    """The address a Google redirect link points to (Google Alerts feeds wrap every link), else ``url``."""
    try:
        parts = urlsplit(url)
        target = _unwrap_redirect((parts.hostname or "").lower(), parts.path, parts.query)
    except ValueError:
        return url
    return target or url


def _unwrap_redirect(host: str, path: str, query: str) -> str | None:
    """The real address inside a Google (Alerts, search) redirect link, if this is one."""
    if re.fullmatch(r"(www\.)?google\.[a-z.]+", host) and path == "/url":
        params = dict(parse_qsl(query))
        target = params.get("url") or params.get("q")
        if target and target.startswith(("http://", "https://")):
            return target
    return None


def _normalise_path(path: str) -> str:
    path = re.sub(r"/{2,}", "/", path or "/")
    path = ANY_ESCAPE.sub(lambda m: m.group(0).upper(), path)
    path = UNRESERVED_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), path)
    return path.rstrip("/") or "/"


def _clean_query(query: str) -> str:
    pairs = [
        (key, value)
        for key, value in parse_qsl(query, keep_blank_values=True)
        if key.lower() not in TRACKING_PARAMS and not key.lower().startswith(TRACKING_PREFIXES)
    ]
    return urlencode(sorted(pairs))


def _reddit_path(host: str, path: str) -> str:
    if host == "redd.it" and re.fullmatch(r"/[a-z0-9]+", path, re.I):
        return f"/comments/{path[1:].lower()}"
    thread = REDDIT_THREAD.match(path)
    if thread is None:
        return path.lower()
    post, comment = thread.group(1).lower(), thread.group(2)
    return f"/comments/{post}/_/{comment.lower()}" if comment else f"/comments/{post}"
