"""Helpers for case tests: flagged posts about the named tenants' doctors and practices, and passes."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from cases.detect import DetectionSettings, Notify, PassReport, detect
from vigil.models import Case, Classification, Doctor, Mention, MentionEntity, Practice
from vigil.settings import Settings

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
Entity = Doctor | Practice
Post = Callable[..., Mention]


def add_post(
    session: Session,
    entities: Sequence[Entity],
    *,
    at: datetime,
    found_at: datetime | None = None,
    author: str = "someone",
    author_id: str | None = None,
    source: str = "x",
    text: str = "",
    labels: Sequence[str] = ("critical",),
    matched: Sequence[str] = (),
    number: int,
) -> Mention:
    """``matched``: each entity's ``matched_text`` (by default its name, as the text gives it)."""
    names = [e.full_name if isinstance(e, Doctor) else e.name for e in entities]
    mention = Mention(
        source=source,
        external_id=str(number),
        url=f"https://{source}.example/{author}/{number}",
        author=author,
        author_id=author_id,
        created_at=at,
        collected_at=found_at or at,
        text=text or f"post {number} about {' and '.join(names)}",
    )
    for entity, name in zip(entities, matched or names, strict=True):
        if isinstance(entity, Doctor):
            mention.entities.append(
                MentionEntity(doctor_id=entity.id, matched_text=name, linked_at=found_at or at)
            )
        else:
            mention.entities.append(
                MentionEntity(practice_id=entity.id, matched_text=name, linked_at=found_at or at)
            )
    mention.classification = Classification(
        model_id="test",
        model_version="1",
        classified_at=at,
        scores={label: 0.91 for label in labels},
        **{label: True for label in labels},
    )
    session.add(mention)
    session.commit()
    return mention


@pytest.fixture
def post(session: Session) -> Post:
    """``post(doctor, at=..., author=..., text=..., labels=...)``: one classified mention, committed."""
    numbers = itertools.count(1)

    def make(*entities: Entity, **kwargs: object) -> Mention:
        return add_post(session, entities, number=next(numbers), **kwargs)  # type: ignore[arg-type]

    return make


@pytest.fixture
def config(settings: Settings) -> DetectionSettings:
    return DetectionSettings.from_settings(settings)


def run_detection(
    session: Session, config: DetectionSettings, now: datetime, notify: Notify | None = None
) -> PassReport:
    """Every pass needed to scan what is pending, as the scheduled job runs them."""
    session.commit()  # end the test session's transaction: on SQLite it holds the write lock
    return detect(session.get_bind(), config, now, notify)  # type: ignore[arg-type]


def cases_of(session: Session, reason: str | None = None) -> list[Case]:
    query = select(Case).order_by(Case.id)
    if reason is not None:
        query = query.where(Case.reason == reason)
    session.expire_all()
    return list(session.scalars(query))


def hours(n: float) -> timedelta:
    return timedelta(hours=n)
