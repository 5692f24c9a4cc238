"""Every kind of email opened in a real browser, as a practice manager opens it on a phone.

The emails are built by the real code paths (routing, the digest, the operator's and the case
team's emails) and read back from the outbox; their HTML part is opened in Debian's chromium,
driven by Playwright, with its inline images swapped in as a mail client does. What is checked:
the page never scrolls sideways at a phone's width or a desktop's, scraped text stays inert
(runs nothing, adds no element, reads as the words it is), nothing is fetched from anywhere,
every link is https, mailto or tel and has words to tap, and every image shows, with alt text.

Each check is shown to fail on a page broken its way (``BROKEN``), so that none passes by default.
Skipped without /usr/bin/chromium (``apt-get install chromium``) or the playwright package.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from alerts.config import AlertsConfig
from alerts.digest import build_digests
from alerts.jobs import route_new_mentions
from alerts.operator import notify_operator
from alerts.weeks import Week
from tests.alerts.browser import (
    DESKTOP,
    PHONE,
    Opened,
    chromium,
    config_with_every_link,
    html_part,
    opened,
    outbox,
)
from tests.alerts.conftest import NOW, Factory
from tests.conftest import Tenancy
from vigil.ops import raise_operator_event
from vigil.runtime import Runtime
from vigil.settings import Settings

if TYPE_CHECKING:
    from playwright.sync_api import Browser

# What people post that has no place to break: the page must wrap it, never scroll sideways.
LONG_LINK = "https://www.example.org/" + "averylongpathsegment/" * 24 + "?utm_source=" + "x" * 120
LONG_WORD = "Nooo" + "o" * 300 + "!!!"
LONG_HANDLE = "@" + "h" * 99
LONG_TEXT = f"Read this about Dr Amira Hassan: {LONG_LINK}\n{LONG_WORD}"

# What people post to break a page: each line sets window.pwned if it runs, and must read as text.
HOSTILE_LINES = [
    "<script>window.pwned = 'script'</script>",
    "<img src=x onerror=\"window.pwned = 'onerror'\">",
    "<a href=\"javascript:window.pwned = 'link'\">tap here</a>",
    "<style>body { display: none } * { width: 5000px }</style>",
    '</div></td></tr></table><div class="post">a forged card</div>',
    '<svg onload="window.pwned = \'svg\'"></svg><iframe src="https://evil.example/"></iframe>',
    '<img src="https://tracker.example/pixel.gif"><link rel="stylesheet" href="https://fonts.example/a.css">',
    '<meta http-equiv="refresh" content="0; url=https://evil.example/"><base href="https://evil.example/">',
]
HOSTILE_TEXT = "\n".join(HOSTILE_LINES)
HOSTILE_HANDLE = '"><svg onload="window.pwned = \'handle\'">'
HOSTILE_URL = "javascript:window.pwned = 'url'"

# Everything the templates, and the guidance's Markdown, may make: scraped text adds nothing to it.
EMAIL_TAGS = {
    "HTML", "HEAD", "META", "TITLE", "STYLE", "BODY", "DIV", "TABLE", "TBODY", "TR", "TD", "TH", "SPAN",
    "P", "H1", "H2", "H3", "A", "BR", "IMG", "OL", "UL", "LI", "STRONG", "EM", "BLOCKQUOTE", "CODE",
}  # fmt: skip
SAFE_HREF = re.compile(r"(https://|mailto:)\S+|tel:\+?[0-9]+")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


# -- the checks ----------------------------------------------------------------------------------


# The widest word that cannot wrap, and where: the likely cause when a page scrolls sideways.
WIDEST_WORD = """() => {
    const context = document.createElement('canvas').getContext('2d');
    let widest = [0, ''];
    for (const element of document.body.querySelectorAll('*')) {
        const style = getComputedStyle(element);
        if (style.overflowWrap === 'anywhere') continue;  // it wraps, however long its words
        context.font = style.font;
        for (const node of element.childNodes) {
            for (const word of node.nodeType === 3 ? node.textContent.split(/\\s+/) : []) {
                const width = Math.round(context.measureText(word).width);
                if (width > widest[0]) widest = [width, `<${element.tagName.toLowerCase()}> ${word.slice(0, 60)}`];
            }
        }
    }
    return `${widest[1]} (${widest[0]}px)`;
}"""


def assert_no_sideways_scroll(email: Opened) -> None:
    """At a phone's width and a desktop's, the page is no wider than the window."""
    for width in (PHONE, DESKTOP):
        email.page.set_viewport_size({"width": width, "height": 800})
        wide, window = email.page.evaluate("() => [document.scrollingElement.scrollWidth, innerWidth]")
        assert wide <= window, (
            f"at {window}px the page is {wide}px wide, scrolling sideways;"
            f" its widest word is {email.page.evaluate(WIDEST_WORD)}"
        )
    email.page.set_viewport_size({"width": PHONE, "height": 800})


def assert_nothing_ran(email: Opened) -> None:
    assert email.page.url == "about:blank", f"the email took the reader to {email.page.url}"
    ran = email.page.evaluate("() => window.pwned")
    assert ran is None and not email.dialogs, f"a script ran: {ran or email.dialogs}"


def assert_nothing_loaded(email: Opened) -> None:
    """No request left the page: no tracking pixel, remote font or image, not even a refused one."""
    remote = [url for url in email.requests if not url.startswith(("data:", "about:"))]
    assert not remote, f"the email loads {remote}"


def assert_only_email_elements(email: Opened) -> None:
    """No element the templates do not make, and scraped text in a card is text and line breaks only."""
    tags = set(email.page.evaluate("() => [...document.querySelectorAll('*')].map(e => e.tagName)"))
    assert tags <= EMAIL_TAGS, f"elements no template makes: {sorted(tags - EMAIL_TAGS)}"
    inside = email.page.evaluate("() => [...document.querySelectorAll('.text *')].map(e => e.outerHTML)")
    assert set(inside) <= {"<br>"}, f"elements inside a post's text: {inside}"
    assert email.page.locator("td.footer").count() == 1, "the layout's table no longer holds the footer"


def assert_links_are_safe_and_have_words(email: Opened) -> None:
    links = email.page.evaluate(
        """() => [...document.querySelectorAll('a')].map(a =>
            [a.getAttribute('href') || '', a.innerText.trim(), a.checkVisibility()])"""
    )
    for href, words, visible in links:
        assert SAFE_HREF.fullmatch(href), f"a link that is not https, mailto or tel: {href!r} ({words!r})"
        assert words and visible, f"a link with no words to tap: {href!r}"


def assert_images_show_with_alt_text(email: Opened) -> None:
    images = email.page.evaluate(
        """() => [...document.images].map(i =>
            [i.getAttribute('src').slice(0, 40), i.complete && i.naturalWidth > 0, i.alt.trim()])"""
    )
    for src, shown, alt in images:
        assert shown, f"an image that does not show: {src}"
        assert alt, f"an image with no alt text: {src}"


CHECKS: list[Callable[[Opened], None]] = [
    assert_no_sideways_scroll,
    assert_nothing_ran,
    assert_nothing_loaded,
    assert_only_email_elements,
    assert_links_are_safe_and_have_words,
    assert_images_show_with_alt_text,
]


def assert_fit_to_open(email: Opened) -> None:
    for check in CHECKS:
        check(email)


def post_texts(email: Opened) -> str:
    return "\n".join(email.page.locator(".post .text").all_inner_texts())


# -- the checks can fail -------------------------------------------------------------------------

PIXEL = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
WELL_MADE = f"""<!DOCTYPE html><html><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"></head><body>
<table><tr><td class="footer"><div class="post"><div class="text">Some words<br>and more</div></div>
<p><a href="https://x.com/a/status/1">Open the original post</a> <a href="tel:999">999</a>
<a href="mailto:a@b.example">email</a></p><img src="{PIXEL}" alt="A chart" width="1">
<p>{{}}</p></td></tr></table></body></html>"""
BROKEN: dict[str, tuple[Callable[[Opened], None], str]] = {
    "a long word": (assert_no_sideways_scroll, "<p>" + "o" * 400 + "</p>"),
    "a wide table": (assert_no_sideways_scroll, '<table width="900"><tr><td>wide</td></tr></table>'),
    "a script": (assert_nothing_ran, "<script>window.pwned = 1</script>"),
    "an onerror handler": (assert_nothing_ran, "<img src=x onerror=\"window.pwned = 1\" alt='x'>"),
    "an alert box": (assert_nothing_ran, "<script>alert('hi')</script>"),
    "a tracking pixel": (assert_nothing_loaded, '<img src="https://tracker.example/p.gif" alt="" width="1">'),
    "a remote font": (assert_nothing_loaded, "<style>@import url(https://fonts.example/a.css);</style>"),
    "a remote background": (
        assert_nothing_loaded,
        '<div style="background:url(https://e.example/b.png)">x</div>',
    ),
    "an iframe": (assert_only_email_elements, '<iframe src="about:blank"></iframe>'),
    "markup in a post": (assert_only_email_elements, '<div class="text"><b>bold</b></div>'),
    "a plain http link": (assert_links_are_safe_and_have_words, '<a href="http://x.com/a">Open</a>'),
    "a javascript link": (assert_links_are_safe_and_have_words, '<a href="javascript:void(0)">Open</a>'),
    "a link without words": (assert_links_are_safe_and_have_words, '<a href="https://x.com/a"></a>'),
    "a hidden link": (assert_links_are_safe_and_have_words, '<a href="https://x.com/a" hidden>Open</a>'),
    "a chart without alt text": (assert_images_show_with_alt_text, f'<img src="{PIXEL}">'),
    "a chart left as cid:": (assert_images_show_with_alt_text, '<img src="cid:trend@vigil" alt="A chart">'),
}


def test_every_check_passes_a_well_made_page(browser: Browser) -> None:
    with opened(browser, WELL_MADE.format("")) as email:
        assert_fit_to_open(email)


@pytest.mark.parametrize("breakage", list(BROKEN))
def test_each_check_fails_on_a_page_broken_its_way(browser: Browser, breakage: str) -> None:
    check, html = BROKEN[breakage]
    with opened(browser, WELL_MADE.format(html)) as email, pytest.raises(AssertionError):
        check(email)


# -- immediate alerts ----------------------------------------------------------------------------


@pytest.fixture
def config(alert_settings: Settings) -> AlertsConfig:
    return config_with_every_link(alert_settings)


def test_long_links_words_and_handles_do_not_make_an_alert_scroll_sideways_on_a_phone(
    browser: Browser, session: Session, engine: Engine, config: AlertsConfig, make: Factory, alice: Tenancy
) -> None:
    make.mention(alice, labels=["threat"], text=LONG_TEXT, author=LONG_HANDLE, url=LONG_LINK)
    route_new_mentions(engine, config, NOW)
    [raw] = outbox(session, "alert")
    with opened(browser, html_part(raw)) as email:
        assert_fit_to_open(email)
        assert LONG_WORD in post_texts(email).replace("\n", "")


def test_on_a_phone_the_email_gives_its_side_margins_to_the_text(
    browser: Browser, session: Session, engine: Engine, config: AlertsConfig, make: Factory, alice: Tenancy
) -> None:
    """The phone layout's narrower padding must beat the padding inlined into each cell."""
    make.mention(alice, labels=["threat"])
    route_new_mentions(engine, config, NOW)
    [raw] = outbox(session, "alert")
    with opened(browser, html_part(raw)) as email:
        padding = "() => getComputedStyle(document.querySelector('td.content')).paddingLeft"
        assert email.page.evaluate(padding) == "16px"
        email.page.set_viewport_size({"width": DESKTOP, "height": 800})
        assert email.page.evaluate(padding) == "28px"


def test_hostile_text_in_a_post_runs_nothing_loads_nothing_and_reads_as_text_in_an_alert(
    browser: Browser,
    session: Session,
    engine: Engine,
    config: AlertsConfig,
    make: Factory,
    alice: Tenancy,
    org: Tenancy,
) -> None:
    make.mention(alice, labels=["threat"], text=HOSTILE_TEXT, author=HOSTILE_HANDLE, url=HOSTILE_URL)
    route_new_mentions(engine, config, NOW)
    raws = outbox(session, "alert")
    assert len(raws) == 2  # the practice's, and the defence organisation's
    for raw in raws:
        with opened(browser, html_part(raw)) as email:
            assert_fit_to_open(email)
            assert post_texts(email) == HOSTILE_TEXT
            assert HOSTILE_HANDLE in email.page.locator(".post .meta").first.inner_text()
            assert email.page.locator(".post").count() == 1
            assert email.page.locator(".post .links").first.inner_text() == "No link to the original post"


def test_every_link_in_a_threat_alert_is_https_mailto_or_tel_and_has_words(
    browser: Browser, session: Session, engine: Engine, config: AlertsConfig, make: Factory, alice: Tenancy
) -> None:
    make.mention(alice, labels=["threat"], text="I know where you park.", url="https://x.com/a/status/9")
    route_new_mentions(engine, config, NOW)
    [raw] = outbox(session, "alert")
    with opened(browser, html_part(raw)) as email:
        assert_fit_to_open(email)
        hrefs = email.page.evaluate("() => [...document.links].map(a => a.getAttribute('href'))")
        assert {"https://x.com/a/status/9", "tel:999", "tel:101", "tel:08000000000"} <= set(hrefs)
        assert "https://vigil.example/preferences" in hrefs
        post = email.page.get_by_role("link", name="Open the original post")
        assert post.get_attribute("href") == "https://x.com/a/status/9" and post.is_visible()


# -- weekly digests ------------------------------------------------------------------------------


def digests(session: Session, engine: Engine, config: AlertsConfig) -> list[bytes]:
    build_digests(engine, config, Week.containing(NOW, config.digest.timezone), now=NOW)
    return outbox(session, "digest")


def test_a_long_link_does_not_make_the_digest_scroll_sideways_on_a_phone(
    browser: Browser, session: Session, engine: Engine, config: AlertsConfig, make: Factory, alice: Tenancy
) -> None:
    make.mention(alice, labels=["critical"], text=LONG_LINK, author=LONG_HANDLE, url=LONG_LINK)
    make.mention(alice, labels=["abusive"], text=LONG_WORD, created_at=NOW - timedelta(days=8))
    [raw] = digests(session, engine, config)
    with opened(browser, html_part(raw)) as email:
        assert_fit_to_open(email)
        assert LONG_LINK[:250] in post_texts(email).replace("\n", "")  # the digest shows 280 characters


def test_hostile_text_in_a_post_runs_nothing_loads_nothing_and_reads_as_text_in_the_digest(
    browser: Browser,
    session: Session,
    engine: Engine,
    config: AlertsConfig,
    make: Factory,
    alice: Tenancy,
    org: Tenancy,
) -> None:
    for number, line in enumerate(HOSTILE_LINES):  # in two sections, so that every one is listed
        label = ["critical", "praise"][number % 2]
        make.mention(alice, labels=[label], text=line, author=HOSTILE_HANDLE, url=HOSTILE_URL)
    raws = digests(session, engine, config)
    assert len(raws) == 2  # the practice's, and the defence organisation's
    for raw in raws:
        with opened(browser, html_part(raw)) as email:
            assert_fit_to_open(email)
            assert sorted(post_texts(email).split("\n")) == sorted(HOSTILE_LINES)


def test_the_digest_chart_shows_with_alt_text_and_fits_a_phone(
    browser: Browser, session: Session, engine: Engine, config: AlertsConfig, make: Factory, alice: Tenancy
) -> None:
    make.mention(alice, labels=["critical"])
    make.mention(alice, labels=["praise"], created_at=NOW - timedelta(days=8))
    [raw] = digests(session, engine, config)
    with opened(browser, html_part(raw)) as email:
        assert_fit_to_open(email)
        chart = email.page.locator("img.chart")
        alt = str(chart.get_attribute("alt"))
        assert alt.startswith("Bar chart of mentions per week") and "Posts a week: " in alt
        box = chart.bounding_box()
        assert box is not None and 0 < box["width"] <= PHONE and box["height"] > 50


BROKEN_WORDS = """selector => [...document.querySelectorAll(selector)].flatMap(cell => {
    const broken = [], texts = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node; (node = texts.nextNode());) {
        for (const word of node.textContent.matchAll(/\\S+/g)) {
            const range = document.createRange();
            range.setStart(node, word.index);
            range.setEnd(node, word.index + word[0].length);
            if (range.getClientRects().length > 1) broken.push(word[0]);
        }
    }
    return broken;
})"""


def test_the_digest_counts_break_no_word_in_two_on_a_phone(
    browser: Browser, session: Session, engine: Engine, config: AlertsConfig, make: Factory, alice: Tenancy
) -> None:
    make.mention(alice, labels=["critical"])
    make.mention(alice, classify=False)  # a row for "Not yet labelled" too
    [raw] = digests(session, engine, config)
    with opened(browser, html_part(raw)) as email:
        assert_fit_to_open(email)
        assert "Criticism" in email.page.locator(".counts td").all_inner_texts()
        assert email.page.evaluate(BROKEN_WORDS, ".counts th, .counts td") == []


# -- the operator's and the case team's emails ---------------------------------------------------


def test_an_operator_email_about_a_long_address_or_url_does_not_scroll_sideways_on_a_phone(
    browser: Browser, session: Session, config: AlertsConfig
) -> None:
    address = "practice.manager.aliceroadsurgery.leeds.westyorkshire@nhs.net"
    raise_operator_event(
        session, "email_failed", f"An email to {address} was not delivered",
        f"Email #12 to {address} failed for good: 550 5.1.1 <{address}>: Recipient address rejected.",
    )  # fmt: skip
    raise_operator_event(session, "source_failing", f"Source {LONG_LINK} is not collecting", LONG_LINK)
    session.commit()
    assert notify_operator(session, config, NOW) == 2
    session.commit()
    [raw] = outbox(session, "operator")
    with opened(browser, html_part(raw)) as email:
        assert_fit_to_open(email)


def test_case_emails_fit_a_phone_and_keep_hostile_posts_inert(
    browser: Browser,
    session: Session,
    runtime: Runtime,
    config: AlertsConfig,
    make: Factory,
    alice: Tenancy,
    org: Tenancy,
) -> None:
    from cases.emails import queue_digests
    from cases.jobs import detect

    make.mention(alice, labels=["threat"], text=HOSTILE_TEXT, author=HOSTILE_HANDLE, url=HOSTILE_URL)
    make.mention(alice, labels=["abusive"], text=LONG_TEXT, author=LONG_HANDLE, url=LONG_LINK)
    detect(runtime, now=NOW)
    queue_digests(session, config, Week.containing(NOW, config.digest.timezone), NOW)
    session.commit()
    [case] = outbox(session, "case")
    [digest] = outbox(session, "cases-digest")
    with opened(browser, html_part(case)) as email:
        assert_fit_to_open(email)
        assert HOSTILE_TEXT in post_texts(email)
    with opened(browser, html_part(digest)) as email:
        assert_fit_to_open(email)
        assert email.page.locator("img.chart").count() == 1
