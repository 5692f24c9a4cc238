"""Care Opinion (UK patient stories about NHS services) through its API v2.

Stories are read from ``/api/v2/opinions`` filtered by the registered practices' ODS codes
(``nacs``), newest published first, ``take``/``skip`` paging and ``publishedafter`` for the
stories since the last sweep. The key is sent as ``Authorization: SUBSCRIPTION_KEY <key>``.
Care Opinion answers a bad key with a redirect to its login page rather than a 401, so any
redirect is treated as a refused key.

A story is filed against services: its ``healthservice`` links name their ODS codes, which the
runner turns into matches for those practices even when the story text does not name them.
A story that cannot be read (no id, no date) is skipped with an error naming it; the others
are kept (``collector.sources.base.each_post``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import requests

from collector.http import describe, http_session
from collector.post import Post
from collector.sources.base import (
    Batch,
    Context,
    Page,
    SourceError,
    State,
    each_post,
    parse_time,
    retry_in,
    retrying,
    sweep_queries,
)

WEBSITE = "https://www.careopinion.org.uk"
PAGE_SIZE = 100
CODES_PER_QUERY = 50


class CareOpinionSource:
    name = "careopinion"

    def __init__(self, context: Context) -> None:
        self.settings = context.settings
        options = context.options(self.name)
        self.endpoint = f"{options.base_url}/api/v2/opinions"
        self.session = http_session(self.settings)
        self.session.headers["Authorization"] = f"SUBSCRIPTION_KEY {options.api_key.get()}"
        self.session.headers["Accept"] = "application/json"
        codes = list(context.ods_codes)
        self.queries = [
            ",".join(codes[i : i + CODES_PER_QUERY]) for i in range(0, len(codes), CODES_PER_QUERY)
        ]

    def fetch(self, state: State) -> Batch:
        return sweep_queries(self.settings, self.queries, state, self.fetch_page)

    def fetch_page(self, query: str, since: str | None, cursor: str | None, start: datetime) -> Page:
        params: list[tuple[str, Any]] = [("nacs", code) for code in query.split(",")]
        params += [
            ("dateofpublicationorder", "descending"),
            ("publishedafter", since or start.isoformat()),
            ("take", PAGE_SIZE),
            ("skip", int(cursor or 0)),
        ]
        opinions = retrying(self.settings, lambda: self.get(params), classify_error)
        posts = each_post(self.name, opinions, to_post)
        newest = max((post.created_at for post in posts), default=None)
        next_skip = int(cursor or 0) + len(opinions)
        return Page(
            posts,
            cursor=str(next_skip) if len(opinions) == PAGE_SIZE else None,
            newest=newest.isoformat() if newest else None,
        )

    def get(self, params: list[tuple[str, Any]]) -> list[dict[str, Any]]:
        response = self.session.get(self.endpoint, params=params, allow_redirects=False)
        status = response.status_code
        if status in (301, 302, 303, 307, 308, 401, 403):
            raise SourceError(f"Care Opinion refused the API key ({status})", permanent=True)
        if status == 429:
            raise SourceError(
                "Care Opinion rate limit reached (5 requests a second)", retry_after=retry_in(60)
            )
        if status >= 400:
            raise SourceError(f"Care Opinion answered {status}")
        opinions = response.json()
        if not isinstance(opinions, list):
            raise SourceError("Care Opinion answered with something other than a list of opinions")
        return opinions


def to_post(opinion: dict[str, Any]) -> Post:
    if not opinion.get("id"):
        raise ValueError("the story has no id")
    links = opinion.get("links") or []
    codes = [
        str(link["id"]).upper() for link in links if link.get("rel") == "healthservice" and link.get("id")
    ]
    title, body = opinion.get("title") or "", opinion.get("body") or ""
    return Post(
        source="careopinion",
        external_id=str(opinion["id"]),
        url=f"{WEBSITE}/{opinion['id']}",
        author=opinion.get("author") or opinion.get("authorRole") or "",
        created_at=published(opinion),
        text=f"{title}\n\n{body}".strip(),
        extra={"ods_codes": codes, "criticality": opinion.get("criticality")},
    )


def published(opinion: dict[str, Any]) -> datetime:
    """When the story was published (else submitted), never later than now: the newest story's
    date is the next sweep's ``publishedafter``, and one dated ahead (a clock or time-zone slip)
    moved it into the future, so that no story was read again until that date."""
    for field in ("dateOfPublication", "dateOfSubmission"):
        try:
            return min(parse_time(opinion[field]), datetime.now(UTC))
        except (KeyError, TypeError, ValueError):  # missing, null, or no time: try the next
            continue
    raise ValueError("the story has no dateOfPublication or dateOfSubmission that is a time")


def classify_error(exc: Exception) -> SourceError:
    if isinstance(exc, requests.RequestException | ValueError | KeyError):
        return SourceError(f"Care Opinion could not be read: {describe(exc)}")
    return SourceError(f"Care Opinion failed unexpectedly: {type(exc).__name__}: {exc}")
