from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from alerts.weeks import Week, due_week
from vigil.errors import VigilError

LONDON = ZoneInfo("Europe/London")


def test_a_week_is_read_and_written_as_an_iso_week() -> None:
    assert str(Week.parse("2026-W05")) == "2026-W05"
    assert Week.parse(" 2026-W53 ") == Week(2026, 53)


@pytest.mark.parametrize("text", ["2026-45", "2026-W54", "2025-W53", "W45", "2026-W4", ""])
def test_a_bad_week_names_what_was_expected(text: str) -> None:
    with pytest.raises(VigilError, match="expected an ISO week such as 2026-W45"):
        Week.parse(text)


def test_a_week_runs_from_monday_midnight_to_monday_midnight_london_time() -> None:
    summer = Week(2026, 24)
    assert summer.start(LONDON) == datetime(2026, 6, 7, 23, 0, tzinfo=UTC)
    assert summer.end(LONDON) == datetime(2026, 6, 14, 23, 0, tzinfo=UTC)
    assert Week(2026, 46).start(LONDON) == datetime(2026, 11, 9, 0, 0, tzinfo=UTC)


def test_weeks_are_titled_as_people_write_them() -> None:
    assert Week(2026, 46).title() == "9–15 November 2026"
    assert Week(2026, 49).title() == "30 November – 6 December 2026"
    assert Week(2026, 53).title() == "28 December 2026 – 3 January 2027"


def test_weeks_step_across_years() -> None:
    assert Week(2026, 53).next() == Week(2027, 1)
    assert Week(2027, 1).previous() == Week(2026, 53)
    assert Week(2026, 46).shifted(-7) == Week(2026, 39)


def test_last_weeks_digest_is_due_from_the_scheduled_time_for_one_day() -> None:
    monday, eight = 0, time(8, 0)
    assert due_week(datetime(2026, 11, 16, 7, 59, tzinfo=UTC), monday, eight, LONDON) is None
    assert due_week(datetime(2026, 11, 16, 8, 0, tzinfo=UTC), monday, eight, LONDON) == Week(2026, 46)
    assert due_week(datetime(2026, 11, 17, 7, 59, tzinfo=UTC), monday, eight, LONDON) == Week(2026, 46)
    assert due_week(datetime(2026, 11, 17, 8, 0, tzinfo=UTC), monday, eight, LONDON) is None
