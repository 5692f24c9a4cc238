"""One collection pass: fetch each source's new posts, match them, store them with the checkpoint.

For each batch a source returns, one transaction writes the new checkpoint (only if no other
collector moved it meanwhile), the matched posts, any operator notices and the source's health.
Killing the process at any moment therefore loses no post and stores none twice: the next run
starts from the last committed checkpoint, and the store skips what it already holds.

Health: every poll records its outcome; a batch the database refuses to store (a full disk, a
schema behind the code) is a failed poll like any other. A source that fails
``collector.failure_alert_after`` times in a row, or fails permanently (credentials refused),
raises one operator event; its recovery raises another. A rate-limited source is left alone
until its reset time, while the other sources carry on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from collector.matching import Entity, EntityMatch, MatcherCache, load_entities, register_version
from collector.post import Post
from collector.sources import SOURCES, build_source, enabled_sources
from collector.sources.base import Batch, Context, Source, SourceError
from collector.store import StoreReport, insert_or_skip, store_matched
from vigil.errors import VigilError, describe
from vigil.models import Practice
from vigil.models.collector import SourceState
from vigil.ops import raise_operator_event
from vigil.runtime import Runtime
from vigil.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class SourceReport:
    source: str
    batches: int = 0
    posts_read: int = 0
    store: StoreReport = field(default_factory=StoreReport)
    error: str | None = None
    skipped: str | None = None


class CheckpointMoved(Exception):
    """Another collector committed this source's checkpoint since this one read it."""


def collect_once(
    runtime: Runtime, source: str | None = None, stop: threading.Event | None = None
) -> list[SourceReport]:
    """Run every enabled source (or one) until each has nothing more to read right now."""
    names = enabled_sources(runtime.settings)
    if source is not None:
        if source not in SOURCES:  # a typo, not a source that is switched off
            raise VigilError(f"there is no source {source!r}; the sources are {', '.join(SOURCES)}")
        if source not in names:
            raise VigilError(f"source {source!r} is not enabled (enabled: {', '.join(names) or 'none'})")
        names = [source]
    if not names:
        return []
    with runtime.transaction() as session:
        context = load_context(session, runtime.settings)
    return [collect_source(runtime, name, context, stop) for name in names]


@dataclass(frozen=True)
class RegisterTerms:
    version: str
    entities: tuple[Entity, ...]
    names: tuple[str, ...]
    ods_codes: tuple[str, ...]


_terms: list[RegisterTerms] = []  # the last one read; re-read only when the register changes
_terms_lock = threading.Lock()


def load_context(session: Session, settings: Settings) -> Context:
    """What sources build their queries from: the register as it is now."""
    version = register_version(session)
    with _terms_lock:
        if not _terms or _terms[0].version != version:
            entities = tuple(load_entities(session))
            names = (name.strip() for entity in entities for name in entity.names)
            ods = (entity.key for entity in entities if entity.kind == "practice")
            _terms[:] = [
                RegisterTerms(version, entities, tuple(sorted(set(names) - {""})), tuple(sorted(ods)))
            ]
        terms = _terms[0]
    return Context(settings=settings, entities=terms.entities, names=terms.names, ods_codes=terms.ods_codes)


def collect_source(
    runtime: Runtime, name: str, context: Context, stop: threading.Event | None = None
) -> SourceReport:
    """Poll one source batch by batch; each batch is committed with its checkpoint."""
    report = SourceReport(name)
    with runtime.transaction() as session:
        row = source_state(session, name)
        if row.retry_after and row.retry_after > datetime.now(UTC):
            when = "%H:%M" if row.retry_after.date() == datetime.now(UTC).date() else "%d %B %Y %H:%M"
            report.skipped = (
                f"waiting for its rate limit or usage cap to reset at {row.retry_after:{when}} UTC"
            )
            return report
        state, version = dict(row.checkpoint), row.version
    source = start_source(name, context)
    while True:
        batch = fetch(source, state)
        try:
            with runtime.transaction() as session:
                version, stored = commit_batch(session, runtime.settings, name, batch, version)
        except CheckpointMoved:
            report.skipped = "another collector is reading this source; stopped"
            return report
        except Exception as exc:  # the database refused the batch: a failed poll, never a silent one
            log.exception("source %s: could not store what it read", name)
            report.error = f"could not store what it read: {describe(exc)}"
            record_store_failure(runtime, name, batch, report.error)
            return report
        report.batches += 1
        report.posts_read += len(batch.posts)
        report.store.add(stored)
        report.error = batch.error.message if batch.error else None
        state = batch.state
        if not batch.more or batch.error is not None or (stop is not None and stop.is_set()):
            return report


@dataclass
class Unavailable:
    """Stands in for a source whose client could not be built, so that the failure is recorded."""

    name: str
    error: SourceError

    def fetch(self, state: dict[str, Any]) -> Batch:
        return Batch([], state, error=self.error)


def start_source(name: str, context: Context) -> Source:
    try:
        return build_source(name, context)
    except SourceError as exc:  # the source found its settings unusable
        return Unavailable(name, SourceError(f"could not start: {exc.message}", permanent=exc.permanent))
    except Exception as exc:  # a client library refused its configuration: record it, never crash
        log.exception("could not start source %s", name)
        return Unavailable(name, SourceError(f"could not start: {type(exc).__name__}: {exc}"))


def fetch(source: Source, state: dict[str, Any]) -> Batch:
    """Ask the source for a batch; an unexpected exception is a failed poll, never a silent one."""
    try:
        return source.fetch(state)
    except SourceError as exc:
        return Batch([], state, error=exc)
    except Exception as exc:
        log.exception("source %s failed unexpectedly", source.name)
        return Batch([], state, error=SourceError(f"unexpected error: {type(exc).__name__}: {exc}"))


def commit_batch(
    session: Session, settings: Settings, name: str, batch: Batch, version: int
) -> tuple[int, StoreReport]:
    """Write the checkpoint, the matched posts, notices and health in the caller's transaction."""
    new_version = advance_checkpoint(session, name, batch.state, version)
    stored = store_matched(session, match_posts(session, settings, batch.posts))
    for notice in batch.notices:
        raise_operator_event(session, notice.kind, notice.subject, notice.message)
    record_health(session, settings, name, batch, stored)
    log.info(
        "source %s: %d read, %d stored, %d already stored (%d naming someone new), %d naming no one,"
        " %d erased on request",
        name, len(batch.posts), stored.stored, stored.duplicates, stored.linked, stored.unmatched,
        stored.erased,
        extra={"source": name},
    )  # fmt: skip
    return new_version, stored


def record_store_failure(runtime: Runtime, name: str, batch: Batch, message: str) -> None:
    """Record a batch the database refused as a failed poll (health, an operator event after
    ``collector.failure_alert_after``). The checkpoint stays, so the posts are read again, but X's
    count of this month's reads moves on, with its budget notices: X billed those reads, and the
    budget must stop the reading even while nothing can be stored."""
    try:
        with runtime.transaction() as session:
            row = source_state(session, name)
            if "usage" in batch.state:
                row.checkpoint = {**row.checkpoint, "usage": batch.state["usage"]}
            for notice in batch.notices:
                raise_operator_event(session, notice.kind, notice.subject, notice.message)
            failed = Batch(batch.posts, batch.state, error=SourceError(message))
            record_health(session, runtime.settings, name, failed, StoreReport())
    except Exception:
        log.exception("source %s: could not record the failure either", name)


def source_state(session: Session, name: str) -> SourceState:
    row = session.get(SourceState, name)
    if row is None:  # the first poll (two processes may both get here: the second insert is skipped)
        session.execute(insert_or_skip(session, SourceState, {"source": name}))
        row = session.get_one(SourceState, name)
    return row


def advance_checkpoint(session: Session, name: str, state: dict[str, Any], version: int) -> int:
    """Conditional UPDATE: only the collector holding the current version may move the checkpoint."""
    result = session.execute(
        update(SourceState)
        .where(SourceState.source == name, SourceState.version == version)
        .values(checkpoint=state, version=version + 1, checkpoint_at=datetime.now(UTC))
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise CheckpointMoved(name)
    return version + 1


# One per process: the automaton is rebuilt only when the register (or [matching]) changes.
MATCHERS = MatcherCache()


def match_posts(
    session: Session, settings: Settings, posts: Sequence[Post]
) -> list[tuple[Post, list[EntityMatch]]]:
    """Each post with the entities it names; a post filed under an ODS code names that practice."""
    if not posts:
        return []
    matcher = MATCHERS.get(session, settings)
    practices: dict[str, int] = {}
    if any(post.extra.get("ods_codes") for post in posts):
        practices = {ods: id_ for ods, id_ in session.execute(select(Practice.ods_code, Practice.id))}
    matched = []
    for post in posts:
        matches = list(matcher.match(post))
        named = {match.practice_id for match in matches}
        for ods in post.extra.get("ods_codes", []):
            practice_id = practices.get(ods)
            if practice_id is not None and practice_id not in named:
                reason = f"{post.source} filed this post under the practice's ODS code {ods}"
                matches.append(EntityMatch(None, practice_id, ods, reason))
        matched.append((post, matches))
    return matched


def record_health(session: Session, settings: Settings, name: str, batch: Batch, stored: StoreReport) -> None:
    row = source_state(session, name)
    now = datetime.now(UTC)
    row.last_attempt_at = now
    row.posts_read += len(batch.posts)
    row.mentions_stored += stored.stored
    error = batch.error
    if error is None:
        if row.alerted_at is not None:
            raise_operator_event(
                session, "source_recovered", f"Source {name} is collecting again",
                f"{name} polled successfully after {row.consecutive_failures} failed poll(s).",
            )  # fmt: skip
        row.last_success_at, row.consecutive_failures = now, 0
        row.retry_after = row.alerted_at = None
        return
    row.consecutive_failures += 1
    row.last_error, row.last_error_at, row.retry_after = error.message, now, error.retry_after
    log.warning("source %s failed (%d in a row): %s", name, row.consecutive_failures, error.message)
    threshold = int(settings.collector.failure_alert_after)
    if row.alerted_at is None and (error.permanent or row.consecutive_failures >= threshold):
        why = "a permanent error" if error.permanent else f"{row.consecutive_failures} failed polls in a row"
        raise_operator_event(
            session,
            "source_failing",
            f"Source {name} is not collecting",
            f"{name} stopped collecting after {why}: {error.message}. "
            f"Last success: {row.last_success_at or 'never'}. See `vigil status`.",
        )
        row.alerted_at = now
