"""Every kind of email checked for accessibility by axe-core, in a real browser, as a phone shows it.

The emails are built by the real code paths and opened as ``test_in_a_browser.py`` opens them;
axe-core, the engine behind most accessibility checkers, is injected into each and runs every rule
of WCAG 2.1 levels A and AA (tags wcag2a, wcag2aa, wcag21a, wcag21aa): text contrast, which a
practice manager reading on a phone in daylight needs, the page's language, names for links and
images, and table headers among them. Three of axe's best-practice rules run too, as an email's
headings are its only map: one h1, levels in order, none empty. Beyond axe, the page must say it
is in British English, a layout table must be marked presentational (and a table of figures must
not be, or its headers go unread), and no link may read as a bare "click here".

axe-core comes from the axe-playwright-python package (the dev extras), which ships its minified
build under its own licence, MPL-2.0. Each check is shown to fail on a page broken its way
(``BROKEN``). Skipped without /usr/bin/chromium, the playwright package or axe-playwright-python.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from alerts.config import AlertsConfig
from alerts.digest import build_digests
from alerts.jobs import route_new_mentions
from alerts.operator import notify_operator
from alerts.weeks import Week
from tests.alerts.browser import Opened, chromium, config_with_every_link, html_part, opened, outbox
from tests.alerts.conftest import NOW, Factory
from tests.conftest import Tenancy
from vigil.ops import raise_operator_event
from vigil.runtime import Runtime
from vigil.settings import Settings

if TYPE_CHECKING:
    from playwright.sync_api import Browser

WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
HEADING_RULES = ["page-has-heading-one", "heading-order", "empty-heading"]  # best practice in axe

# axe's rules for WCAG 2.1 A and AA, and the heading rules, in one run; only violations come back.
RUN_AXE = """async ([tags, extra]) => {
    const rules = axe.getRules(tags).map(rule => rule.ruleId).concat(extra);
    const results = await axe.run(document, {runOnly: {type: 'rule', values: rules}, resultTypes: ['violations']});
    return results.violations;
}"""


@pytest.fixture(scope="module")
def axe_script() -> str:
    base = pytest.importorskip(
        "axe_playwright_python.base",
        reason="the accessibility tests need axe-core, from the axe-playwright-python package (make install-dev)",
    )
    return str(base.AXE_SCRIPT)


@pytest.fixture(scope="module")
def browser(axe_script: str) -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


# -- the checks ----------------------------------------------------------------------------------


def describe(found: list[dict[str, Any]]) -> str:
    """Each violation's id, impact and rule, then every element it was found on, as HTML."""
    lines = [f"{len(found)} accessibility violations:"]
    for violation in found:
        lines.append(f"- {violation['id']} ({violation['impact']}): {violation['help']}")
        for node in violation["nodes"]:
            lines.append(f"    {node['html'][:300]}")
            summary = " ".join(str(node.get("failureSummary") or "").split())
            if summary:
                lines.append(f"      {summary[:300]}")
    return "\n".join(lines)


def violations(email: Opened, axe_script: str) -> list[dict[str, Any]]:
    email.page.evaluate(axe_script)
    found: list[dict[str, Any]] = email.page.evaluate(RUN_AXE, [WCAG_21_AA, HEADING_RULES])
    return found


def assert_no_axe_violations(email: Opened, axe_script: str) -> None:
    found = violations(email, axe_script)
    if found:
        raise AssertionError(describe(found))


def assert_in_british_english(email: Opened, axe_script: str) -> None:
    """axe asks only for a valid language: a screen reader should read the email in a British voice."""
    lang = email.page.evaluate("() => document.documentElement.getAttribute('lang')")
    assert lang == "en-GB", f'the html element has lang={lang!r}, not "en-GB"'


# A table of figures has header cells, and a layout table none: each must say which it is.
TABLES = """() => [...document.querySelectorAll('table')].map(table => [
    table.getAttribute('role') || '',
    [...table.querySelectorAll('th')].filter(th => th.closest('table') === table).length,
    table.outerHTML.slice(0, 200),
])"""


def assert_tables_say_whether_they_hold_data(email: Opened, axe_script: str) -> None:
    for role, headers, html in email.page.evaluate(TABLES):
        if headers:
            assert role != "presentation", (
                f"a table of figures marked presentational hides its headers: {html}"
            )
        else:
            assert role == "presentation", f'a layout table not marked role="presentation": {html}'


VAGUE = re.compile(r"(click )?here|(read )?more|link|this|this link|details|https?://\S+", re.IGNORECASE)


def assert_links_say_where_they_go(email: Opened, axe_script: str) -> None:
    """axe asks only that a link has a name: that name must say where the link goes."""
    names = email.page.evaluate("() => [...document.links].map(a => a.innerText.trim())")
    vague = [name for name in names if VAGUE.fullmatch(name)]
    assert not vague, f"links whose words do not say where they go: {vague}"


CHECKS: list[Callable[[Opened, str], None]] = [
    assert_no_axe_violations,
    assert_in_british_english,
    assert_tables_say_whether_they_hold_data,
    assert_links_say_where_they_go,
]


def assert_accessible(email: Opened, axe_script: str) -> None:
    for check in CHECKS:
        check(email, axe_script)


# -- the checks can fail -------------------------------------------------------------------------

WELL_MADE = """<!DOCTYPE html><html lang="en-GB"><head><meta charset="utf-8"><title>An alert</title></head>
<body><table role="presentation"><tr><td><h1>A post</h1><p>Some words.</p><h2>What to do</h2>
<table class="counts"><tr><th scope="col">Category</th><th scope="col">Posts</th></tr>
<tr><td>Threats</td><td>2</td></tr></table>
<p><a href="https://x.com/a/status/1">Open the original post</a></p>{}</td></tr></table></body></html>"""
BROKEN: dict[str, tuple[Callable[[Opened, str], None], str]] = {
    "pale text": (assert_no_axe_violations, '<p style="color:#b0b0b0">Call 999</p>'),
    "a link with no words": (assert_no_axe_violations, '<a href="https://x.com/a"></a>'),
    "an image without alt text": (assert_no_axe_violations, '<img src="data:," width="1" height="1">'),
    "a skipped heading level": (assert_no_axe_violations, "<h4>Guidance</h4>"),
    "an empty heading": (assert_no_axe_violations, "<h2></h2>"),
    "a cell naming a header that is not there": (
        assert_no_axe_violations,
        '<table><tr><th id="a">A</th></tr><tr><td headers="b">1</td></tr></table>',
    ),
    "a layout table left as data": (
        assert_tables_say_whether_they_hold_data,
        "<table><tr><td>x</td></tr></table>",
    ),
    "figures marked presentational": (
        assert_tables_say_whether_they_hold_data,
        '<table role="presentation"><tr><th>Posts</th></tr><tr><td>2</td></tr></table>',
    ),
    "a vague link": (assert_links_say_where_they_go, '<a href="https://x.com/a">click here</a>'),
    "a bare address as a link": (
        assert_links_say_where_they_go,
        '<a href="https://x.com/a">https://x.com/a</a>',
    ),
}


def test_every_check_passes_a_well_made_page(browser: Browser, axe_script: str) -> None:
    with opened(browser, WELL_MADE.format("")) as email:
        assert_accessible(email, axe_script)


@pytest.mark.parametrize("breakage", list(BROKEN))
def test_each_check_fails_on_a_page_broken_its_way(browser: Browser, axe_script: str, breakage: str) -> None:
    check, html = BROKEN[breakage]
    with opened(browser, WELL_MADE.format(html)) as email, pytest.raises(AssertionError):
        check(email, axe_script)


def test_a_page_without_a_language_fails_twice(browser: Browser, axe_script: str) -> None:
    """axe's html-has-lang, and the British English check, which also fails a US "en"."""
    with opened(browser, WELL_MADE.format("").replace(' lang="en-GB"', "")) as email:
        with pytest.raises(AssertionError, match="html-has-lang"):
            assert_no_axe_violations(email, axe_script)
        with pytest.raises(AssertionError, match='not "en-GB"'):
            assert_in_british_english(email, axe_script)
    with opened(browser, WELL_MADE.format("").replace('"en-GB"', '"en"')) as email:
        assert_no_axe_violations(email, axe_script)
        with pytest.raises(AssertionError, match='not "en-GB"'):
            assert_in_british_english(email, axe_script)


def test_a_violation_is_reported_with_its_id_impact_and_html(browser: Browser, axe_script: str) -> None:
    pale = WELL_MADE.format('<p style="color:#b0b0b0">Call 999</p>')
    with opened(browser, pale) as email, pytest.raises(AssertionError) as failure:
        assert_no_axe_violations(email, axe_script)
    assert "- color-contrast (serious): " in str(failure.value)
    assert '<p style="color:#b0b0b0">Call 999</p>' in str(failure.value)


# -- every kind of email -------------------------------------------------------------------------


@pytest.fixture
def config(alert_settings: Settings) -> AlertsConfig:
    return config_with_every_link(alert_settings)


@dataclass
class World:
    """What building each kind of email needs: the database, the configuration, and two practices."""

    session: Session
    engine: Engine
    runtime: Runtime
    config: AlertsConfig
    make: Factory
    alice: Tenancy
    bob: Tenancy


@pytest.fixture
def world(
    session: Session,
    engine: Engine,
    runtime: Runtime,
    config: AlertsConfig,
    make: Factory,
    alice: Tenancy,
    bob: Tenancy,
    org: Tenancy,
) -> World:
    return World(session, engine, runtime, config, make, alice, bob)


def alerts(world: World) -> list[bytes]:
    """A threat (the practice's and the organisation's) and an abusive post, each with a link to report it."""
    world.make.mention(world.alice, labels=["threat"], text="I know where you park.\nWatch yourself.")
    world.make.mention(world.bob, labels=["abusive"], text="Worst GP in Leeds, a disgrace.", source="reddit")
    route_new_mentions(world.engine, world.config, NOW)
    raws = outbox(world.session, "alert")
    assert len(raws) == 3
    return raws


def digests(world: World) -> list[bytes]:
    """Alice's practice's full digest, with a chart and every section, the organisation's, and Bob's quiet one."""
    make, alice = world.make, world.alice
    for number, labels in enumerate(
        [["threat"], ["abusive"], ["critical"], ["praise"], ["critical", "abusive"]]
    ):
        make.mention(alice, labels=labels, created_at=NOW - timedelta(hours=1 + 4 * number))
    make.mention(alice, classify=False)
    make.mention(alice, labels=["critical"], created_at=NOW - timedelta(days=9))
    build_digests(world.engine, world.config, Week.containing(NOW, world.config.digest.timezone), now=NOW)
    raws = outbox(world.session, "digest")
    assert len(raws) == 3
    return raws


def operator(world: World) -> list[bytes]:
    raise_operator_event(world.session, "email_failed", "An email was not delivered", "550 5.1.1 rejected")
    raise_operator_event(world.session, "source_failing", "Source reddit is not collecting", "HTTP 503")
    world.session.commit()
    assert notify_operator(world.session, world.config, NOW) == 2
    world.session.commit()
    return outbox(world.session, "operator")


def cases(world: World) -> list[bytes]:
    """The case team's email about an emerging case, and its weekly digest."""
    from cases.emails import queue_digests
    from cases.jobs import detect

    world.make.mention(world.alice, labels=["threat"], text="I know where you park.")
    world.make.mention(world.alice, labels=["abusive"], text="A disgrace of a doctor.")
    detect(world.runtime, now=NOW)
    queue_digests(world.session, world.config, Week.containing(NOW, world.config.digest.timezone), NOW)
    world.session.commit()
    return outbox(world.session, "case") + outbox(world.session, "cases-digest")


EMAILS: dict[str, Callable[[World], list[bytes]]] = {
    "alerts": alerts,
    "weekly digests": digests,
    "the operator's email": operator,
    "the case team's emails": cases,
}


@pytest.mark.parametrize("kind", list(EMAILS))
def test_every_email_meets_wcag_2_1_aa(browser: Browser, axe_script: str, world: World, kind: str) -> None:
    raws = EMAILS[kind](world)
    failures = []
    for number, raw in enumerate(raws, start=1):
        with opened(browser, html_part(raw)) as email:
            for check in CHECKS:
                try:
                    check(email, axe_script)
                except AssertionError as error:
                    failures.append(f"{kind}, email {number} of {len(raws)} ({email.page.title()}): {error}")
    if failures:
        raise AssertionError("\n\n".join(failures))
