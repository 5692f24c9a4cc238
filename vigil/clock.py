"""Times as people read them: on the organisation's clock (``digest.timezone``), with its zone."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo


def sortable_time(moment: datetime, timezone: ZoneInfo, zone: bool = True) -> str:
    """``2026-11-03 14:05 GMT``: sorts as text, spreadsheets read it as a date and time, and a
    terminal column stays narrow. Without ``zone``, the zone is still given in the hour the clocks
    go back, which happens twice (``2026-10-25 01:30 BST``, then ``01:30 GMT``)."""
    here = moment.astimezone(timezone)
    twice = here.replace(fold=1 - here.fold).utcoffset() != here.utcoffset()
    return f"{here:%Y-%m-%d %H:%M} {here.tzname()}" if zone or twice else f"{here:%Y-%m-%d %H:%M}"
