"""Posts from files: JSONL or CSV exports (review sites, a colleague's spreadsheet, Vigil's own export).

Fields: ``source, external_id, url, author, created_at, text``; any other field is ignored, so a
file written by ``vigil mentions export`` imports as it is. Every line is validated first and
every error reported with its line and field; if there is any error nothing is imported.
Imported posts go through the same matching and storage as collected ones: a post that names no
registered entity is not stored, and one already stored is skipped.

CSV cells that a spreadsheet would run as a formula are written by the export with a leading
apostrophe; one leading apostrophe before such a cell is removed here, so export and import are
exact inverses.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from collector.post import Post
from collector.run import match_posts
from collector.store import StoreReport, store_matched
from vigil.register import RegisterImportError, RowError, csv_problem
from vigil.settings import Settings

FIELDS = ("source", "external_id", "url", "author", "created_at", "text")
REQUIRED = ("source", "external_id", "created_at", "text")
SOURCE_NAME = re.compile(r"^[a-z][a-z0-9_.-]{0,31}$")
FORMULA = re.compile(r"^'*[=+\-@\t\r]")


class PostImportError(RegisterImportError):
    """Some lines are invalid; nothing was imported (reported like a register import)."""


@dataclass
class ImportReport:
    read: int
    store: StoreReport


def import_posts(session: Session, settings: Settings, path: Path) -> ImportReport:
    """Validate the whole file, then match and store its posts in the caller's transaction."""
    posts = read_posts(path)
    return ImportReport(len(posts), store_matched(session, match_posts(session, settings, posts)))


def read_posts(path: Path) -> list[Post]:
    """Every post in the file, or ``PostImportError`` listing every bad line."""
    errors: list[RowError] = []
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise PostImportError([RowError(str(path), 0, "", "file does not exist")]) from None
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise PostImportError([RowError(str(path), line, "", "is not UTF-8 text")]) from None
    rows = _jsonl_rows(path, text, errors) if is_jsonl(path, text) else _csv_rows(path, text, errors)
    posts: list[Post] = []
    seen: dict[tuple[str, str], int] = {}
    for line, values in rows:
        post = _validate(str(path), line, values, errors)
        if post is None:
            continue
        key = (post.source, post.external_id)
        if key in seen:
            errors.append(RowError(str(path), line, "external_id", f"appears twice (also line {seen[key]})"))
            continue
        seen[key] = line
        posts.append(post)
    if not errors and not posts:
        errors.append(RowError(str(path), 0, "", "contains no posts"))
    if errors:
        raise PostImportError(errors)
    return posts


def is_jsonl(path: Path, text: str) -> bool:
    if path.suffix.lower() in {".jsonl", ".ndjson", ".json"}:
        return True
    if path.suffix.lower() == ".csv":
        return False
    return text.lstrip().startswith("{")


def _jsonl_rows(path: Path, text: str, errors: list[RowError]) -> Iterator[tuple[int, dict[str, Any]]]:
    """One JSON object a line, split only at ``\n`` (JSON Lines): ``str.splitlines`` would also
    split at U+2028, U+0085 and others, which the export writes raw inside strings."""
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            errors.append(
                RowError(str(path), number, "", f"is not valid JSON ({exc.msg} at column {exc.colno})")
            )
            continue
        if not isinstance(value, dict):
            errors.append(RowError(str(path), number, "", "is not a JSON object"))
            continue
        yield number, value


def _csv_rows(path: Path, text: str, errors: list[RowError]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows with the physical line each record starts on (``line_num`` counts the lines of
    multi-line cells); a plain ``csv.reader``, as ``DictReader`` skips blank lines unseen.

    Strict, so that a stray quote is an error at the line it is on: the lenient reader would run
    the rest of the file into one cell, and the posts after it would be lost without a word."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    start = 1
    try:
        header = [column.strip() for column in next(reader, [])]
        missing = [field for field in REQUIRED if field not in header]
        if missing:
            found = ",".join(header) or "nothing"
            errors.append(RowError(str(path), 1, missing[0], f"column is missing (the header has {found})"))
            return
        start = reader.line_num + 1
        for row in reader:
            if len(row) > len(header):
                errors.append(RowError(str(path), start, "", "has more fields than the header"))
            elif any(row):
                yield start, {key: unescape_cell(value) for key, value in zip(header, row, strict=False)}
            start = reader.line_num + 1
    except csv.Error as exc:
        errors.append(RowError(str(path), start, "", csv_problem(exc)))


def _validate(file: str, line: int, values: dict[str, Any], errors: list[RowError]) -> Post | None:
    before = len(errors)

    def fail(field: str, message: str) -> None:
        errors.append(RowError(file, line, field, message))

    fields: dict[str, str] = {}
    for field in FIELDS:
        value = values.get(field)
        if value is None:
            value = ""
        if not isinstance(value, str):
            fail(field, f"must be text, not {type(value).__name__}")
            fields[field] = ""
            continue  # not also "must not be empty": it is there, only not text
        fields[field] = value.strip() if field != "text" else value
        if field in REQUIRED and not fields[field].strip():
            fail(field, "must not be empty")
    if fields["source"] and not SOURCE_NAME.match(fields["source"]):
        fail("source", f"{fields['source']!r} is not a source name (lower-case letters, digits, - _ .)")
    if fields["url"] and not re.match(r"^https?://[^\s/]+", fields["url"]):
        fail("url", f"{fields['url']!r} is not an http(s) URL")
    if len(fields["author"]) > 255:
        fail("author", "is longer than 255 characters")
    created = _parse_created(fields["created_at"], fail) if fields["created_at"] else None
    if len(errors) > before or created is None:
        return None
    return Post(
        source=fields["source"],
        external_id=fields["external_id"],
        url=fields["url"],
        author=fields["author"],
        created_at=created,
        text=fields["text"],
    )


def _parse_created(value: str, fail: Callable[[str, str], None]) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        fail("created_at", f"{value!r} is not an ISO 8601 time such as 2026-11-24T08:30:00Z")
        return None
    if moment.tzinfo is None:
        fail("created_at", f"{value!r} has no time zone (write it as 2026-11-24T08:30:00Z or with +01:00)")
        return None
    return moment.astimezone(UTC)


def escape_cell(value: str) -> str:
    """Keep spreadsheets from running scraped text as a formula (CSV export)."""
    return "'" + value if FORMULA.match(value) else value


def unescape_cell(value: str) -> str:
    return value[1:] if value.startswith("'") and FORMULA.match(value[1:]) else value
