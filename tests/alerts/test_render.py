"""Scraped text can never inject HTML or email headers: a corpus of payloads through every email."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from html.parser import HTMLParser
from typing import cast

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from alerts.config import AlertsConfig
from alerts.digest import build_digests
from alerts.jobs import route_new_mentions
from alerts.render import clean, oneline, safe_url
from alerts.weeks import Week
from tests.alerts.conftest import NOW, Factory
from tests.conftest import Tenancy
from vigil.models import OutboxMessage

# What people have posted to break a page or a mail client. Each must arrive as inert text.
PAYLOADS = [
    "<script>alert('x')</script>",
    '"><img src=x onerror=alert(1)>',
    "<a href=\"javascript:alert(1)\" onclick='steal()'>click me</a>",
    "<style>body{display:none}</style><iframe src=//evil.example></iframe>",
    "\u202etxt.exe\u202c is not what it seems",
    "\u2066isolated\u2069 text with \u200f marks and \u061c",
    "line one\r\nBcc: victim@example.org\r\n\r\nInjected body",
    "name\nSubject: forged\nX-Injected: yes",
    "\x1b[31mterminal escape\x1b[0m and a \x07 bell",  # (PostgreSQL refuses NUL: the collector strips it)
    "{{ 7 * 7 }} {% if true %}jinja{% endif %}",
    "=?utf-8?b?QmNjOiB2aWN0aW1AZXhhbXBsZS5vcmc=?=",
    "&lt;already escaped&gt; &amp; &#x3C;script&#x3E;",
]
HANDLES = ["@evil\r\nBcc: victim@example.org", "Mallory\u202e<b>evil</b>", '"><svg onload=alert(1)>']
FORBIDDEN_CHARACTERS = re.compile(
    "[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"
)


class Elements(HTMLParser):
    """Every element and attribute in an HTML document, as a browser's parser sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes.extend((name, value or "") for name, value in attrs)


def parse(raw: bytes) -> EmailMessage:
    return cast(EmailMessage, message_from_bytes(raw, policy=policy.default))


def assert_inert(raw: bytes) -> None:
    headers = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    names = [line.split(":", 1)[0] for line in headers.split("\r\n") if line and not line[0].isspace()]
    assert sorted(set(names)) == sorted(names), "a header appears twice"
    assert not {"Bcc", "X-Injected", "Cc"} & set(names), names
    message = parse(raw)
    assert "\n" not in str(message["Subject"]) and "forged" not in str(message["Subject"])
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    for part in (text, html):
        assert not FORBIDDEN_CHARACTERS.search(part.replace("\r\n", "\n").replace("\t", " "))
    elements = Elements()
    elements.feed(html)
    assert not {"script", "iframe", "svg", "object", "embed", "form"} & set(elements.tags)
    assert set(elements.tags) <= {
        "html", "head", "meta", "title", "style", "body", "div", "table", "tr", "td", "th", "span", "p",
        "h1", "h2", "h3", "a", "br", "img", "ol", "ul", "li", "strong", "em", "blockquote", "code", "tbody",
    }  # fmt: skip
    for name, value in elements.attributes:
        assert not name.startswith("on"), (name, value)
        if name in ("href", "src"):
            assert value.startswith(("https://", "http://", "cid:", "mailto:")) or re.fullmatch(
                r"tel:\+?[0-9]+", value
            ), value
    assert html.count("<style") == 1  # the template's own


@pytest.fixture
def corpus(make: Factory, alice: Tenancy) -> None:
    assert alice.practice
    for number, payload in enumerate(PAYLOADS):
        make.mention(
            alice if number % 2 else alice.practice,
            labels=["threat", "abusive", "critical", "praise"][number % 4 : number % 4 + 1],
            text=f"Post {number}: {payload}",
            author=HANDLES[number % len(HANDLES)],
            url=["javascript:alert(1)", "https://x.com/a/status/1\r\nBcc: x@y.example", "data:text/html,hi"][
                number % 3
            ],
            created_at=NOW - timedelta(minutes=3),
        )


@pytest.mark.usefixtures("corpus")
def test_no_payload_injects_html_or_headers_into_alerts(
    session: Session, engine: Engine, config: AlertsConfig, alice: Tenancy
) -> None:
    assert alice.practice and alice.recipient
    alice.doctors[0].full_name = "Amira\r\nBcc: victim@example.org"
    alice.practice.name = "Alice <script>alert(1)</script> Surgery"
    alice.recipient.name = "Manager\r\nX-Injected: yes"
    session.commit()
    route_new_mentions(engine, config, NOW)
    messages = session.scalars(select(OutboxMessage)).all()
    assert len(messages) == 4  # threat and abuse about the doctor and about the practice
    for message in messages:
        assert_inert(message.raw)
    texts = "".join(parse(m.raw).get_body(("plain",)).get_content() for m in messages)  # type: ignore[union-attr]
    assert "{{ 7 * 7 }} {% if true %}jinja{% endif %}" in texts  # shown, never evaluated
    html = parse(messages[0].raw).get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html or "&lt;script&gt;" in html


@pytest.mark.usefixtures("corpus")
def test_no_payload_injects_html_or_headers_into_digests(
    session: Session, engine: Engine, config: AlertsConfig, alice: Tenancy
) -> None:
    build_digests(engine, config, Week.containing(NOW, config.digest.timezone), now=NOW)
    [message] = session.scalars(select(OutboxMessage)).all()
    assert_inert(message.raw)
    text = parse(message.raw).get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "<script>alert('x')</script>" in text  # shown as the words it is, in the text part
    assert "{{ 7 * 7 }} {% if true %}jinja{% endif %}" in text  # shown, never evaluated


def test_clean_removes_controls_and_direction_overrides_but_keeps_the_words() -> None:
    assert clean("a\u202eb\u202cc\x00d\x1b[0m") == "abcd[0m"
    assert clean("one\r\ntwo\n\n\n\nthree") == "one\ntwo\n\nthree"
    assert oneline("Jo\r\nBcc: x@y") == "Jo Bcc: x@y"
    assert oneline("word " * 100, 20) == "word word word word…"
    assert clean("Dr Zoë 👩\u200d⚕️ café") == "Dr Zoë 👩\u200d⚕️ café"


@pytest.mark.parametrize(
    ("url", "linked"),
    [
        ("https://x.com/a/status/1", True),
        ("http://example.org/post?id=1&b=2", True),
        ("javascript:alert(1)", False),
        ("JaVaScRiPt:alert(1)", False),
        ("data:text/html,<script>", False),
        ("https://x.com/a\r\nBcc: x", False),
        ("https://x.com/\u202eevil", False),
        ("//evil.example/path", False),
        ("", False),
    ],
)
def test_only_plain_web_links_are_linked(url: str, linked: bool) -> None:
    assert safe_url(url) == (url if linked else "")


def test_times_are_shown_on_the_practices_clock(config: AlertsConfig) -> None:
    from alerts.render import local_time

    tz = config.digest.timezone
    assert local_time(datetime(2026, 11, 3, 14, 5, tzinfo=UTC), tz) == "Tue 3 Nov 2026, 14:05 GMT"
    assert local_time(datetime(2026, 6, 3, 14, 5, tzinfo=UTC), tz) == "Wed 3 Jun 2026, 15:05 BST"
