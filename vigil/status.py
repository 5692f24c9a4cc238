"""What ``vigil status`` shows: each part of the pipeline contributes a section of (label, value)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from alerts.outbox import status_section as outbox_section
from alerts.status import alerts_section
from cases.views import status_section as cases_section
from classifier.status import classifier_section
from vigil import migrate
from vigil.models import Classification, Mention
from vigil.register import register_counts
from vigil.runtime import Runtime

Section = tuple[str, list[tuple[str, str]]]


def database_section(runtime: Runtime, session: Session) -> Section:
    current = migrate.current_revision(runtime.engine)
    head = migrate.head_revision()
    if current == head:
        schema = f"{current} (up to date)"
    else:
        schema = f"{current or 'empty'}, latest is {head}: run `vigil db upgrade`"
    return "Database", [("URL", runtime.safe_database_url()), ("Schema", schema)]


def register_section(runtime: Runtime, session: Session) -> Section:
    counts = register_counts(session)
    return "Register", [(label.capitalize(), str(count)) for label, count in counts.items()]


def store_section(runtime: Runtime, session: Session) -> Section:
    mentions = session.scalar(select(func.count()).select_from(Mention)) or 0
    classified = session.scalar(select(func.count()).select_from(Classification)) or 0
    pending = str(mentions - classified)
    return "Store", [("Mentions", str(mentions)), ("Awaiting classification", pending)]


def sources_section(runtime: Runtime, session: Session) -> Section:
    from collector.status import source_rows

    return "Sources", source_rows(runtime.settings, session)


SECTIONS: list[Callable[[Runtime, Session], Section]] = [
    database_section,
    register_section,
    store_section,
    sources_section,
    classifier_section,
    alerts_section,
    outbox_section,
    cases_section,
]


def collect_status(runtime: Runtime) -> list[Section]:
    """Every section, or only the database one while the schema is missing or out of date."""
    with runtime.transaction() as session:
        first = database_section(runtime, session)
        if not migrate.schema_is_current(runtime.engine):
            return [first]
        return [first] + [section(runtime, session) for section in SECTIONS[1:]]
