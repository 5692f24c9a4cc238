"""Opening an email in a real browser: Debian's chromium, driven by Playwright, as a phone shows it.

Shared by the browser tests (``test_in_a_browser.py``) and the accessibility tests
(``test_accessibility.py``). ``chromium()`` skips the test, with the reason, without
/usr/bin/chromium (``apt-get install chromium``) or the playwright package.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, cast

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.config import AlertsConfig, load_config
from vigil.models import OutboxMessage
from vigil.settings import Settings

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Dialog, Page, Route

CHROMIUM = Path("/usr/bin/chromium")
PHONE, DESKTOP = 375, 1280  # CSS pixels: an iPhone SE or mini, and a laptop


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's chromium, as Playwright's own builds need the internet; skips the test without it."""
    if not CHROMIUM.exists():
        pytest.skip(f"the browser tests need chromium at {CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the browser tests need the playwright package (make install-dev)"
    )
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield browser
        browser.close()


def config_with_every_link(settings: Settings) -> AlertsConfig:
    """With an operator address, and a preferences page linked from every email's footer."""
    return load_config(
        settings.with_overrides(
            email__operator_address="operator@vigil.example",
            email__unsubscribe_url="https://vigil.example/preferences",
        )
    )


@dataclass
class Opened:
    """An email open in the browser, with every request it made and every dialog it opened."""

    page: Page
    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


def html_part(raw: bytes) -> str:
    """The HTML part as a mail client shows it: each inline image (cid:) swapped for its data."""
    message = cast(EmailMessage, message_from_bytes(raw, policy=policy.default))
    part = message.get_body(("html",))
    assert part is not None
    html = str(part.get_content())
    for image in message.walk():
        cid = image["Content-ID"]
        if cid and image.get_content_maintype() == "image":
            data = base64.b64encode(cast(bytes, image.get_payload(decode=True))).decode("ascii")
            html = html.replace(
                f"cid:{cid.strip().strip('<>')}", f"data:{image.get_content_type()};base64,{data}"
            )
    return html


@contextmanager
def opened(browser: Browser, html: str) -> Iterator[Opened]:
    """The page at a phone's width, with scripts on (to see whether any would run) and no network."""
    context = browser.new_context(viewport={"width": PHONE, "height": 800})
    try:
        page = context.new_page()
        seen = Opened(page)

        def refuse(route: Route) -> None:
            route.abort()

        def dismiss(dialog: Dialog) -> None:
            seen.dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("request", lambda request: seen.requests.append(request.url))
        page.on("dialog", dismiss)
        page.route("**/*", refuse)
        page.set_content(html, wait_until="load")
        yield seen
    finally:
        context.close()


def outbox(session: Session, kind: str) -> list[bytes]:
    """The raw emails of one kind queued so far, oldest first; fails when there are none."""
    session.expire_all()
    raws = list(
        session.scalars(
            select(OutboxMessage.raw).where(OutboxMessage.kind == kind).order_by(OutboxMessage.id)
        )
    )
    session.commit()  # end the read: on SQLite every transaction holds the write lock
    assert raws, f"no {kind} email was queued"
    return raws
