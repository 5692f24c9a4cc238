"""Guidance on how to respond: one editable Markdown file per topic, rendered into every email.

The files are written by people (the operator, the defence organisation's advisers) and may use
two placeholders, ``{{ organisation }}`` and ``{{ advice_line }}``, filled from the settings. Raw
HTML in them is shown as text, never passed through.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from markdown_it import MarkdownIt
from markupsafe import Markup

from alerts.config import GUIDANCE_TOPICS
from vigil.labels import LABELS
from vigil.settings import SettingsError

_PLACEHOLDERS = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
_MARKDOWN = MarkdownIt("commonmark", {"html": False, "typographer": True}).enable(["replacements"])
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
_EMPHASIS = re.compile(r"(\*\*|__)(.+?)\1|(?<![\w*])\*(?!\s)(.+?)\*")
_LAST_GOOD: dict[tuple[Path, str, str], dict[str, Guidance]] = {}

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Guidance:
    topic: str
    title: str
    html: Markup
    text: str


def load_guidance(folder: Path, organisation: str, advice_line: str) -> dict[str, Guidance]:
    """Every topic's guidance, rendered; re-read when a file changes, so edits apply without a restart.

    An edit that breaks a file (a misspelt placeholder, a missing title) is logged and the last
    good guidance kept, so a typo never stops threat alerts; with none yet, the error is raised.
    """
    key = (folder, organisation, advice_line)
    try:
        guidance = read_guidance(folder, organisation, advice_line)
    except SettingsError as exc:
        if key not in _LAST_GOOD:
            raise
        log.error("guidance not reloaded, the last good version stays in use: %s", exc)
        return _LAST_GOOD[key]
    _LAST_GOOD[key] = guidance
    return guidance


def read_guidance(folder: Path, organisation: str, advice_line: str) -> dict[str, Guidance]:
    """Every topic's guidance as the files say now; SettingsError names the file that is wrong."""
    try:
        stamps = tuple((folder / f"{topic}.md").stat().st_mtime_ns for topic in GUIDANCE_TOPICS)
    except OSError as exc:
        raise SettingsError(f"guidance file {exc.filename}: {exc.strerror}") from exc
    return _load(folder, stamps, organisation, advice_line)


def topics_for(labels: Collection[str]) -> list[str]:
    """The guidance topics to show for some labels: most serious first, then the general advice."""
    return [label for label in LABELS if label in labels] + ["general"]


@lru_cache(maxsize=8)
def _load(folder: Path, _stamps: tuple[int, ...], organisation: str, advice_line: str) -> dict[str, Guidance]:
    return {
        topic: _render(folder / f"{topic}.md", topic, organisation, advice_line) for topic in GUIDANCE_TOPICS
    }


def _render(path: Path, topic: str, organisation: str, advice_line: str) -> Guidance:
    try:
        source = _PLACEHOLDERS.from_string(path.read_text(encoding="utf-8")).render(
            organisation=organisation, advice_line=advice_line
        )
    except (TemplateError, UnicodeDecodeError) as exc:
        raise SettingsError(f"guidance file {path}: {exc}") from exc
    title, _, body = source.lstrip().partition("\n")
    if not title.startswith("# "):
        raise SettingsError(f"guidance file {path}: the first line must be a '# Title'")
    return Guidance(
        topic=topic,
        title=title[2:].strip(),
        html=Markup(_MARKDOWN.render(body)),  # markdown-it escapes raw HTML (html=False)
        text=_plain(body.strip()),
    )


def _plain(markdown: str) -> str:
    """Markdown as it reads in a plain-text email: links as ``text <url>``, no emphasis markers."""
    text = _LINK.sub(lambda m: f"{m.group(1)} <{m.group(2)}>", markdown)
    return _EMPHASIS.sub(lambda m: m.group(2) or m.group(3), text)
