"""ISO weeks (Monday to Sunday) in the digest's time zone: what a weekly digest covers, and when it is due."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from vigil.errors import VigilError

_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
# If Vigil was down at the scheduled time, digests still go out when it comes back within this.
CATCH_UP = timedelta(days=1)


@dataclass(frozen=True, order=True)
class Week:
    year: int
    number: int

    @classmethod
    def parse(cls, text: str) -> Week:
        match = _WEEK.match(text.strip())
        if match:
            year, number = int(match.group(1)), int(match.group(2))
            try:
                date.fromisocalendar(year, number, 1)
            except ValueError:
                pass
            else:
                return cls(year, number)
        raise VigilError(f"week {text!r}: expected an ISO week such as 2026-W45")

    @classmethod
    def containing(cls, moment: datetime, timezone: ZoneInfo) -> Week:
        year, number, _ = moment.astimezone(timezone).date().isocalendar()
        return cls(year, number)

    def __str__(self) -> str:
        return f"{self.year}-W{self.number:02d}"

    @property
    def monday(self) -> date:
        return date.fromisocalendar(self.year, self.number, 1)

    @property
    def sunday(self) -> date:
        return self.monday + timedelta(days=6)

    def start(self, timezone: ZoneInfo) -> datetime:
        """Monday 00:00 local time, in UTC."""
        return datetime.combine(self.monday, datetime.min.time(), timezone).astimezone(UTC)

    def end(self, timezone: ZoneInfo) -> datetime:
        return self.next().start(timezone)

    def shifted(self, weeks: int) -> Week:
        year, number, _ = (self.monday + timedelta(weeks=weeks)).isocalendar()
        return Week(year, number)

    def previous(self) -> Week:
        return self.shifted(-1)

    def next(self) -> Week:
        return self.shifted(1)

    def title(self) -> str:
        """``2–8 November 2026`` or ``30 November – 6 December 2026``, as people write a week."""
        first, last = self.monday, self.sunday
        if first.year != last.year:
            return f"{first.day} {first:%B %Y} – {last.day} {last:%B %Y}"
        if first.month != last.month:
            return f"{first.day} {first:%B} – {last.day} {last:%B %Y}"
        return f"{first.day}–{last.day} {last:%B %Y}"


def scheduled_time(week: Week, weekday: int, clock: time, timezone: ZoneInfo) -> datetime:
    """When the digest is sent in ``week`` (it covers the week before), in UTC."""
    day = week.monday + timedelta(days=weekday)
    return datetime.combine(day, clock, timezone).astimezone(UTC)


def due_week(now: datetime, weekday: int, clock: time, timezone: ZoneInfo) -> Week | None:
    """The week whose digest is due at ``now``, or None outside the sending window.

    The digest sent in week N covers week N-1 (the last complete Monday-to-Sunday week), from the
    scheduled time until one day later, so a job that runs every few minutes sends it once (the
    outbox keys make repeats harmless) and a restart after a short outage still sends it. A late
    slot (Sunday 23:30) has its day of catch-up in the next ISO week, so last week's slot is
    checked too; the windows are a day long and a week apart, so at most one is open.
    """
    current = Week.containing(now, timezone)
    for sending in (current, current.previous()):
        sending_from = scheduled_time(sending, weekday, clock, timezone)
        if sending_from <= now < sending_from + CATCH_UP:
            return sending.previous()
    return None


def require_ended(week: Week, now: datetime, timezone: ZoneInfo) -> Week:
    """``week`` if it is over at ``now``; a VigilError naming when it ends otherwise.

    A digest is built once per recipient and week: one built before the week ends would be the
    only one, and the posts from the rest of the week would never be in any digest.
    """
    end = week.end(timezone).astimezone(timezone)
    if now < end:
        raise VigilError(
            f"week {week} has not ended yet: it ends at {end:%H:%M} on {end:%A} {end.day} {end:%B %Y}"
            f" ({timezone.key}), and only a finished week can be digested"
        )
    return week
