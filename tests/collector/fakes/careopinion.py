"""A fake Care Opinion API v2 ``/api/v2/opinions``.

Shapes from Care Opinion's API v2 documentation and public clients of it: the answer is a JSON
array of opinions (id, title, body in Markdown, dateOfSubmission, dateOfPublication,
criticality, progress, authorRole, links with rel/id/href, where rel ``healthservice`` carries
the service's ODS code); ``take``/``skip`` paging; filters as on the website (``nacs``,
``publishedafter``); the key in ``Authorization: SUBSCRIPTION_KEY ...``. A bad key is answered
with a redirect to the login page, as the documentation warns.
"""

from __future__ import annotations

from datetime import datetime

from tests.collector.fakes.corpus import Item
from tests.collector.fakes.server import FakeServer, Reply, Request, json_reply

API_KEY = "careopinion-test-key"
PATH = "/api/v2/opinions"


def opinion(item: Item, ods: str, base_url: str) -> dict[str, object]:
    stamp = item.created_at.strftime("%Y-%m-%dT%H:%M:%S")
    return {
        "id": 1_200_000 + item.number,
        "title": f"Story {item.number}",
        "body": item.text,
        "dateOfSubmission": stamp,
        "dateOfPublication": stamp,
        "criticality": "moderately critical",
        "progress": "The story has been read",
        "authorRole": "patient",
        "authorAgeGroup": "45-54",
        "submissionRoute": "Web",
        "links": [
            {
                "rel": "self",
                "id": str(1_200_000 + item.number),
                "href": f"{base_url}{PATH}/{1_200_000 + item.number}",
            },
            {
                "rel": "healthservice",
                "id": ods.lower(),
                "href": f"{base_url}/api/v2/healthservices/{ods.lower()}",
            },
        ],
    }


class FakeCareOpinion:
    page_size = 100

    def __init__(self, server: FakeServer, ods_codes: list[str]) -> None:
        self.server = server
        self.ods_codes = ods_codes
        self.items: list[Item] = []
        self.sent: dict[int, object] = {}  # an item's opinion as sent: fields to change, or another value
        server.route("GET", PATH, self.opinions)

    def rate_limited(self) -> Reply:
        return Reply(429, b"Rate limit exceeded", {"Content-Type": "text/plain", "Retry-After": "1"})

    def unauthorized(self) -> Reply:
        return Reply(302, b"", {"Location": "/login?returnUrl=%2Fapi%2Fv2%2Fopinions"})

    def ods_of(self, item: Item) -> str:
        return self.ods_codes[item.number % len(self.ods_codes)]

    def opinions(self, request: Request) -> Reply:
        if request.headers.get("authorization") != f"SUBSCRIPTION_KEY {API_KEY}":
            return self.unauthorized()
        codes = {code.upper() for code in request.query.get("nacs", [])}
        found = [item for item in self.items if self.ods_of(item) in codes]
        if request.arg("publishedafter"):
            after = datetime.fromisoformat(request.arg("publishedafter") or "")
            found = [
                item for item in found if item.created_at.replace(tzinfo=None) >= after.replace(tzinfo=None)
            ]
        descending = (request.arg("dateofpublicationorder") or "ascending") == "descending"
        found.sort(key=lambda item: item.created_at, reverse=descending)
        skip, take = int(request.arg("skip") or 0), min(int(request.arg("take") or 10), self.page_size)
        page = found[skip : skip + take]
        return json_reply([self.opinion(item) for item in page])

    def opinion(self, item: Item) -> object:
        story = opinion(item, self.ods_of(item), self.server.base_url)
        sent = self.sent.get(item.number, {})
        return {**story, **sent} if isinstance(sent, dict) else sent
