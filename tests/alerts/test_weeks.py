from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from alerts.weeks import CATCH_UP, Week, due_week, require_ended, scheduled_time
from vigil.errors import VigilError

LONDON = ZoneInfo("Europe/London")
MONDAY, SUNDAY = 0, 6


def london(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    """A moment on the London clock, as the digest settings are written."""
    return datetime(year, month, day, hour, minute, tzinfo=LONDON)


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


@pytest.mark.parametrize(
    ("now", "due"),
    [
        (london(2026, 11, 15, 23, 29), None),  # Sunday of 2026-W46, a minute before the slot
        (london(2026, 11, 15, 23, 45), Week(2026, 45)),
        (london(2026, 11, 16, 0, 5), Week(2026, 45)),  # Monday of 2026-W47: still catching up
        (london(2026, 11, 16, 23, 29), Week(2026, 45)),
        (london(2026, 11, 16, 23, 40), None),  # the day of catch-up is over
        (london(2026, 3, 29, 23, 45), Week(2026, 12)),  # the day BST starts
        (london(2026, 3, 30, 0, 5), Week(2026, 12)),  # Sunday 23:05 UTC, but Monday in London
    ],
)
def test_a_missed_sunday_night_digest_is_caught_up_on_monday(now: datetime, due: Week | None) -> None:
    assert due_week(now, SUNDAY, time(23, 30), LONDON) == due


@pytest.mark.parametrize(
    ("now", "due"),
    [
        (london(2026, 3, 30, 7, 59), None),  # the first Monday of BST: 06:59 UTC
        (london(2026, 3, 30, 8, 0), Week(2026, 13)),
        (london(2026, 3, 31, 7, 59), Week(2026, 13)),
        (london(2026, 3, 31, 8, 0), None),
        (london(2026, 10, 19, 8, 0), Week(2026, 42)),  # the last Monday of BST: 07:00 UTC
        (london(2026, 10, 26, 7, 59), None),  # the first Monday of GMT: 07:59 UTC
        (london(2026, 10, 26, 8, 0), Week(2026, 43)),
        (london(2026, 10, 27, 8, 0), None),
    ],
)
def test_the_default_monday_morning_digest_is_due_at_8_london_time_in_bst_and_gmt(
    now: datetime, due: Week | None
) -> None:
    assert due_week(now, MONDAY, time(8, 0), LONDON) == due


@pytest.mark.parametrize("clock", [time(0, 0), time(8, 0), time(23, 30)])
@pytest.mark.parametrize("weekday", range(7))
def test_any_slot_makes_the_week_before_due_for_one_day_and_only_then(weekday: int, clock: time) -> None:
    slot = scheduled_time(Week(2026, 46), weekday, clock, LONDON)
    minute = timedelta(minutes=1)
    assert due_week(slot - minute, weekday, clock, LONDON) is None
    assert due_week(slot, weekday, clock, LONDON) == Week(2026, 45)
    assert due_week(slot + CATCH_UP - minute, weekday, clock, LONDON) == Week(2026, 45)
    assert due_week(slot + CATCH_UP, weekday, clock, LONDON) is None


def test_only_a_week_that_has_ended_in_the_digest_time_zone_can_be_digested() -> None:
    last_minute = london(2026, 11, 15, 23, 59)
    with pytest.raises(VigilError) as raised:
        require_ended(Week(2026, 46), last_minute, LONDON)
    assert str(raised.value) == (
        "week 2026-W46 has not ended yet: it ends at 00:00 on Monday 16 November 2026"
        " (Europe/London), and only a finished week can be digested"
    )
    with pytest.raises(VigilError, match="week 2026-W47 has not ended yet"):
        require_ended(Week(2026, 47), last_minute, LONDON)
    assert require_ended(Week(2026, 46), london(2026, 11, 16, 0, 0), LONDON) == Week(2026, 46)
