from __future__ import annotations

import logging

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.models import OperatorEvent
from vigil.ops import raise_operator_event


def test_an_operator_event_is_logged_at_error_level_and_stored(
    session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="vigil.operator"):
        raise_operator_event(session, "source_failing", "x", "5 failures in a row: HTTP 503")
        session.commit()
    assert "x: 5 failures in a row: HTTP 503" in caplog.text
    event = session.scalar(select(OperatorEvent))
    assert event is not None and event.notified_at is None and event.kind == "source_failing"


def test_an_event_about_a_very_long_feed_url_is_stored_with_its_subject_cut_to_fit(session: Session) -> None:
    """PostgreSQL refused the event, a 255-character column, and with it the collector's pass."""
    url = "https://news.example/" + "segment/" * 60
    raise_operator_event(session, "source_failing", f"Source {url} is not collecting", f"{url}: HTTP 503")
    session.commit()
    event = session.scalars(select(OperatorEvent)).one()
    assert len(event.subject) == 255 and event.subject.startswith("Source https://news.example/segment/")
    assert event.subject.endswith("…") and event.message == f"{url}: HTTP 503"
