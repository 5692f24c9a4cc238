"""The collector's lines in ``vigil status``: each source's health, checkpoint and X's read budget.

Checkpoints are summarised, never printed whole: Bluesky's holds a session token.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from collector.sources import SOURCES
from vigil.clock import sortable_time
from vigil.models.collector import SourceState
from vigil.settings import Settings


def source_rows(settings: Settings, session: Session) -> list[tuple[str, str]]:
    states = {row.source: row for row in session.scalars(select(SourceState))}
    zone = ZoneInfo(settings.digest.timezone)  # the organisation's clock, as everywhere in ``vigil status``
    rows = []
    for name in SOURCES:
        enabled = bool(getattr(settings.sources, name).enabled)
        state = states.get(name)
        if state is None:
            rows.append((name, "enabled, not polled yet" if enabled else "disabled"))
            continue
        rows.append((name, health(state, enabled, zone)))
        rows.append((f"{name} checkpoint", checkpoint_summary(state, zone)))
        if name == "x" and state.checkpoint.get("usage"):
            rows.append(("x reads this month", x_usage(settings, state.checkpoint["usage"])))
    return rows


def health(state: SourceState, enabled: bool, zone: ZoneInfo) -> str:
    parts = ["enabled" if enabled else "disabled", f"last success {when(state.last_success_at, zone)}"]
    if state.consecutive_failures:
        parts.append(f"FAILING ({state.consecutive_failures} in a row): {state.last_error}")
    if state.retry_after:
        parts.append(f"rate-limited until {when(state.retry_after, zone)}")
    parts.append(f"{state.posts_read:,} read, {state.mentions_stored:,} stored")
    return "; ".join(parts)


def checkpoint_summary(state: SourceState, zone: ZoneInfo) -> str:
    checkpoint: dict[str, Any] = state.checkpoint or {}
    parts = [f"saved {when(state.checkpoint_at, zone)}"]
    if "queries" in checkpoint:
        parts.append(f"{len(checkpoint['queries'])} queries")
    if checkpoint.get("pass"):
        parts.append("a pass is under way")
    elif checkpoint.get("last_pass"):
        parts.append(f"last full pass began {when(datetime.fromisoformat(checkpoint['last_pass']), zone)}")
    if "feeds" in checkpoint:
        parts.append(f"{len(checkpoint['feeds'])} feeds")
    return ", ".join(parts)


def x_usage(settings: Settings, usage: dict[str, Any]) -> str:
    budget = int(settings.sources.x.monthly_read_budget)
    reads = int(usage.get("reads", 0))
    cost = reads * float(settings.sources.x.cost_per_read)
    share = f" ({reads / budget:.0%})" if budget else ""
    stopped = "; stopped until next month" if reads >= budget else ""
    return f"{reads:,} of {budget:,}{share} in {usage.get('month')}, about ${cost:,.2f}{stopped}"


def when(moment: datetime | None, zone: ZoneInfo) -> str:
    return sortable_time(moment, zone) if moment else "never"
