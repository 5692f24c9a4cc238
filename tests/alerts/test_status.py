from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from alerts.config import AlertsConfig
from alerts.digest import build_digests
from alerts.jobs import route_new_mentions
from alerts.status import alerts_section
from alerts.weeks import Week
from tests.alerts.conftest import Factory
from tests.conftest import Tenancy
from vigil.runtime import Runtime

WEDNESDAY = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)  # in 2026-W47


def rows_at(runtime: Runtime, session: Session, now: datetime) -> dict[str, str]:
    session.expire_all()
    title, rows = alerts_section(runtime, session, now)
    assert title == "Alerts and digests"
    return dict(rows)


def test_status_shows_what_routing_has_still_to_see_and_what_it_sent(
    session: Session, engine: Engine, config: AlertsConfig, runtime: Runtime, make: Factory, alice: Tenancy
) -> None:
    make.mention(alice, labels=["threat"], created_at=WEDNESDAY - timedelta(minutes=5))
    make.mention(alice, labels=["abusive"], created_at=WEDNESDAY - timedelta(minutes=4))
    before = rows_at(runtime, session, WEDNESDAY)
    assert before["Awaiting routing"] == "2" and before["Immediate alerts, last 7 days"] == "0"
    session.commit()
    route_new_mentions(engine, config, WEDNESDAY)
    make.mention(alice, labels=["abusive"], created_at=WEDNESDAY)
    later = WEDNESDAY + timedelta(minutes=1)
    route_new_mentions(engine, config, later)
    after = rows_at(runtime, session, later)
    assert after["Awaiting routing"] == "0"
    # Alice's manager: the threat and the first insult at once, the second insult in a follow-up
    # when the grouping window closes.
    assert after["Immediate alerts, last 7 days"] == "2"
    assert after["Grouped alerts waiting for their window"] == "1"
    assert rows_at(runtime, session, WEDNESDAY + timedelta(days=8))["Immediate alerts, last 7 days"] == "0"


def test_status_shows_the_last_digests_built_and_when_the_next_are_due(
    session: Session, engine: Engine, config: AlertsConfig, runtime: Runtime, make: Factory, alice: Tenancy
) -> None:
    rows = rows_at(runtime, session, WEDNESDAY)
    assert rows["Last digests"] == "none yet"
    assert rows["Next digests"] == "2026-W47, due 2026-11-23 08:00 GMT"  # Monday, for the week before
    make.mention(alice, labels=["critical"], created_at=WEDNESDAY - timedelta(days=7))
    session.commit()
    report = build_digests(engine, config, Week(2026, 46), now=WEDNESDAY)
    assert report.built >= 1
    assert rows_at(runtime, session, WEDNESDAY)["Last digests"] == f"2026-W46: {report.built} built"
    monday_after_eight = datetime(2026, 11, 23, 8, 30, tzinfo=UTC)
    assert rows_at(runtime, session, monday_after_eight)["Next digests"] == (
        "2026-W47, due since 2026-11-23 08:00 GMT"
        " (none built yet; `vigil run` builds them until 2026-11-24 08:00 GMT)"
    )  # a day of catch-up: vigil run still sends them
    session.commit()  # end the read: on SQLite every transaction holds the write lock
    build_digests(engine, config, Week(2026, 47), now=monday_after_eight)
    assert (
        rows_at(runtime, session, monday_after_eight)["Next digests"] == "2026-W48, due 2026-11-30 08:00 GMT"
    )
