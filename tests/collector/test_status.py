from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from collector.status import source_rows
from vigil.models import SourceState
from vigil.settings import Settings


def test_status_shows_each_sources_health_checkpoint_and_x_spending_on_the_organisations_clock(
    session: Session, settings: Settings
) -> None:
    now = datetime(2026, 7, 24, 8, 0, tzinfo=UTC)  # 09:00 in London
    session.add_all(
        [
            SourceState(
                source="x",
                checkpoint={
                    "queries": {"q1": {}, "q2": {}},
                    "last_pass": now.isoformat(),
                    "usage": {"month": "2026-07", "reads": 8500},
                },
                checkpoint_at=now,
                last_success_at=now,
                posts_read=8500,
                mentions_stored=120,
                last_error="",
            ),
            SourceState(
                source="bluesky",
                checkpoint={"queries": {}, "session": {"for": "me", "session": "SECRET-SESSION"}},
                consecutive_failures=3,
                last_error="Bluesky could not be reached",
            ),
        ]
    )
    session.commit()
    rows = dict(
        source_rows(
            settings.with_overrides(sources__x__enabled=True, sources__x__monthly_read_budget=10000), session
        )
    )
    assert rows["x"].startswith("enabled; last success 2026-07-24 09:00 BST")
    assert (
        rows["x checkpoint"]
        == "saved 2026-07-24 09:00 BST, 2 queries, last full pass began 2026-07-24 09:00 BST"
    )
    assert rows["x reads this month"] == "8,500 of 10,000 (85%) in 2026-07, about $42.50"
    assert "FAILING (3 in a row): Bluesky could not be reached" in rows["bluesky"]
    assert "SECRET-SESSION" not in str(rows)
    assert rows["reddit"] == "disabled"
