"""Emails as template triplets (subject, plain text, HTML) extending one base, with scraped text made safe.

Every template is autoescaped except the ``.txt`` ones: those are the text/plain part and the
subject, where HTML escaping would only garble what people read (a text/plain part cannot run
markup). What keeps scraped text harmless there is ``clean``: it removes control characters,
including carriage returns and line feeds in single-line fields and the Unicode bidirectional
overrides that can make text read differently from what it is. Links to posts go through
``safe_url``: only http and https are ever linked.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import css_inline
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

TEMPLATES = Path(__file__).resolve().parent / "templates"

# Bidirectional embeddings, overrides and isolates, and the invisible marks that steer them.
_BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_CONTROL = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}\ufeff\ufff9-\ufffb]")
_LINE_BREAKS = re.compile(r"[\r\n\u2028\u2029\x85\x0b\x0c]")
_SPACES = re.compile(r"[^\S\n]+")
_INLINER = css_inline.CSSInliner(keep_style_tags=True, load_remote_stylesheets=False)


def clean(value: object, single_line: bool = False) -> str:
    """Scraped text made inert: no control or bidi characters; one line if ``single_line``."""
    text = unicodedata.normalize("NFC", str(value or ""))
    text = _LINE_BREAKS.sub(" " if single_line else "\n", text.replace("\r\n", "\n"))
    text = _CONTROL.sub("", text)
    text = _SPACES.sub(" ", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def oneline(value: object, limit: int = 200) -> str:
    """A name, handle or subject: cleaned to one line and shortened."""
    return shorten(clean(value, single_line=True), limit)


def shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if text[limit - 1] != " " and " " in cut:  # do not end on half a word
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,.;:") + "…"


def safe_url(value: object) -> str:
    """The URL if it is an http(s) link without tricks, else the empty string (not linked)."""
    url = str(value or "").strip()
    parts = urlsplit(url)
    if (
        parts.scheme not in ("http", "https")
        or not parts.netloc
        or _CONTROL.search(url)
        or re.search(r"\s", url)
    ):
        return ""
    return url


def paragraphs(value: object) -> Markup:
    """Scraped text for HTML: cleaned, escaped, line breaks kept as <br>."""
    return Markup("<br>\n").join(escape(line) for line in clean(value).split("\n"))


def tel(number: object) -> str:
    """A telephone number as a ``tel:`` target: ``0800 000 0000`` -> ``08000000000``."""
    return re.sub(r"[^0-9+]", "", str(number or ""))


def percent(score: object) -> str:
    try:
        return f"{float(score):.0%}"  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "–"


def local_time(moment: datetime, timezone: ZoneInfo) -> str:
    """``Tue 3 Nov 2026, 14:05 GMT``: what people in the practice read on their clock."""
    here = moment.astimezone(timezone)
    return f"{here:%a} {here.day} {here:%b %Y, %H:%M} {here.tzname()}"


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(disabled_extensions=("txt",), default_for_string=True, default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        clean=clean,
        oneline=oneline,
        shorten=shorten,
        safe_url=safe_url,
        paragraphs=paragraphs,
        percent=percent,
        tel=tel,
    )
    return env


ENVIRONMENT = _environment()


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def render_email(name: str, context: Mapping[str, Any]) -> RenderedEmail:
    """Render ``{name}-subject.txt``, ``{name}-body.txt`` and ``{name}-body.html``; inline the CSS.

    The HTML templates extend ``base-body.html`` and the text ones ``base-body.txt``, which expect
    ``organisation`` and ``footer`` (why the recipient gets this email) in the context.
    """
    subject = ENVIRONMENT.get_template(f"{name}-subject.txt").render(context)
    text = ENVIRONMENT.get_template(f"{name}-body.txt").render(context)
    html = ENVIRONMENT.get_template(f"{name}-body.html").render(context)
    return RenderedEmail(subject=oneline(subject, 250), text=text, html=_INLINER.inline(html))
