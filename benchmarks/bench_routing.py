"""Benchmark routing at a defence organisation's scale: a week's backlog, and a pass with nothing new.

    python benchmarks/bench_routing.py                      # 10,000 recipients, ~27,000 mentions a week
    python benchmarks/bench_routing.py --scale 1            # a quick run (~2,700 a week)
    python benchmarks/bench_routing.py --database-url postgresql+psycopg://postgres@127.0.0.1/test
    python benchmarks/bench_routing.py --json               # one JSON object

The register and eight weeks of classified mentions are ``bench_alerts``' (``--scale`` times as
many mentions). Every statement sent to the database is counted with a SQLAlchemy event listener.

Routing: the last week's mentions are a backlog (everything older was routed), routed as
``vigil run`` does (``route_new_mentions``); then a pass with nothing to route, as every minute.
The baseline is the loop before pending mentions were marked: it found them 10,000 at a time by
joining every classification to its routed row, a scan of the whole classified history. Each
side starts from the same state, and a digest of who was alerted of what (label, follow-up or
not) tells that both sides agree.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete, event, func, insert, or_, select, update
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_alerts import SENT_AT, WEEK, in_scratch_database, populate

from alerts.config import AlertsConfig, load_config
from alerts.jobs import route_and_enqueue, route_new_mentions
from alerts.routing import BATCH, SCAN, RoutingReport
from vigil import migrate
from vigil.db import make_engine, read_only, transaction
from vigil.models import Alert, AlertMention, Classification, Mention, OutboxMessage, RoutedMention
from vigil.settings import load_settings

NOW = SENT_AT - timedelta(hours=1)  # the backlog's posts are recent enough for immediate alerts


class Statements:
    """Counts the statements an engine sends (every cursor execution)."""

    def __init__(self, engine: Engine) -> None:
        self.count = 0
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, *_: Any) -> None:
        self.count += 1


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--recipients", type=int, default=10_000, help="recipients (default 10,000)")
    parser.add_argument("--scale", type=float, default=10, help="mentions, times bench_alerts' (default 10)")
    parser.add_argument("--database-url", default="", help="PostgreSQL URL to use instead of a SQLite file")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    results = in_scratch_database(args, run)
    print(json.dumps(results) if args.json else report(results))


def run(args: argparse.Namespace, url: str, folder: Path) -> dict[str, Any]:
    engine = make_engine(url)
    migrate.upgrade(engine)
    config = load_config(
        load_settings(environ={"VIGIL_DATABASE__URL": url, "VIGIL_EMAIL__OUTBOX_DIR": str(folder / "outbox")})
    )
    started = time.perf_counter()
    mentions = populate(engine, args.recipients, args.scale)
    results: dict[str, Any] = {
        "backend": engine.dialect.name,
        "recipients": args.recipients,
        "mentions": mentions,
        "populate_s": round(time.perf_counter() - started, 1),
    }
    statements = Statements(engine)
    results.update(bench_routing(engine, config, statements))
    engine.dispose()
    return results


def bench_routing(engine: Engine, config: AlertsConfig, statements: Statements) -> dict[str, Any]:
    """The backlog and an idle pass, Vigil's way and the baseline's, each from the same state."""
    backlog = route_all_but_last_week(engine, config)
    results: dict[str, Any] = {"routing_backlog": backlog}
    for name, route in (("vigil", route_new_mentions), ("baseline", route_scanning_history)):
        reset_last_week(engine, config)
        backlog_run = measure(statements, partial(route, engine, config, NOW))
        idle_run = measure(statements, partial(route, engine, config, NOW))
        routing: RoutingReport = backlog_run["value"]
        results[f"routing_{name}_routed"] = routing.routed
        results[f"routing_{name}_alerted"] = routing.alerted
        results[f"routing_{name}_emails"] = routing.emails
        results[f"routing_{name}_s"] = backlog_run["s"]
        results[f"routing_{name}_statements"] = backlog_run["statements"]
        results[f"routing_{name}_idle_ms"] = round(idle_run["s"] * 1000, 1)
        results[f"routing_{name}_idle_statements"] = idle_run["statements"]
        results[f"routing_{name}_alerts_sha256"] = alerts_digest(engine)
    results["routing_same_alerts"] = (
        results["routing_vigil_alerts_sha256"] == results["routing_baseline_alerts_sha256"]
    )
    return results


def alerts_digest(engine: Engine) -> str:
    """A digest of who was alerted of what, by which kind of alert, to tell that both sides agree."""
    with Session(engine) as session:
        rows = session.execute(
            select(AlertMention.recipient_id, AlertMention.mention_id, Alert.label, Alert.follow_up)
            .join(Alert, Alert.id == AlertMention.alert_id)
            .order_by(AlertMention.recipient_id, AlertMention.mention_id)
        ).all()
    return hashlib.sha256(repr([tuple(row) for row in rows]).encode()).hexdigest()


def route_scanning_history(engine: Engine, config: AlertsConfig, now: datetime) -> RoutingReport:
    """The baseline: ``route_new_mentions`` before pending mentions were marked, which found them by
    reading every classification and its routed row, 10,000 at a time."""
    total = RoutingReport()
    while True:
        with read_only(engine) as session:
            pending = pending_by_scanning(session, SCAN)
        for start in range(0, max(len(pending), 1), BATCH):
            total.add(route_and_enqueue(engine, config, now, pending[start : start + BATCH]))
        if len(pending) < SCAN:
            return total


def pending_by_scanning(session: Session, limit: int) -> list[int]:
    """The classified mentions not routed, or routed with older labels: the query before the mark."""
    unrouted = or_(
        RoutedMention.mention_id.is_(None), RoutedMention.classified_at < Classification.classified_at
    )
    return list(
        session.scalars(
            select(Classification.mention_id)
            .outerjoin(RoutedMention, RoutedMention.mention_id == Classification.mention_id)
            .where(unrouted)
            .order_by(Classification.classified_at, Classification.mention_id)
            .limit(limit)
        )
    )


def route_all_but_last_week(engine: Engine, config: AlertsConfig) -> int:
    """Mark every mention before the benchmark's week as routed; return how many are left."""
    start = WEEK.start(config.digest.timezone)
    with transaction(engine) as session:
        session.execute(
            insert(RoutedMention).from_select(
                ["mention_id", "classified_at", "routed_at"],
                select(Classification.mention_id, Classification.classified_at, Classification.classified_at)
                .join(Mention, Mention.id == Classification.mention_id)
                .where(Mention.created_at < start),
            )
        )
        before = select(Mention.id).where(Mention.created_at < start)
        session.execute(
            update(Classification).where(Classification.mention_id.in_(before)).values(routing_pending=False)
        )
        return (
            session.scalar(select(func.count()).select_from(Mention).where(Mention.created_at >= start)) or 0
        )


def reset_last_week(engine: Engine, config: AlertsConfig) -> None:
    """Undo the routing of the benchmark's week: its routed rows, the alerts and their emails."""
    start = WEEK.start(config.digest.timezone)
    with transaction(engine) as session:
        session.execute(delete(AlertMention))
        session.execute(delete(Alert))
        session.execute(delete(OutboxMessage))
        week = select(Mention.id).where(Mention.created_at >= start)
        session.execute(delete(RoutedMention).where(RoutedMention.mention_id.in_(week)))
        session.execute(
            update(Classification).where(Classification.mention_id.in_(week)).values(routing_pending=True)
        )


def measure(statements: Statements, work: Callable[[], Any]) -> dict[str, Any]:
    """Run ``work`` once: its value, seconds and statements."""
    before, started = statements.count, time.perf_counter()
    value = work()
    elapsed = time.perf_counter() - started
    return {"value": value, "s": round(elapsed, 4), "statements": statements.count - before}


def report(results: dict[str, Any]) -> str:
    lines = [
        f"Routing benchmark ({results['backend']}, {results['recipients']:,} recipients,"
        f" {results['mentions']:,} mentions)",
        f"Routing a backlog of {results['routing_backlog']:,} mentions",
    ]

    def line(label: str, value: Any, note: str = "") -> None:
        lines.append(f"  {label:<44} {value!s:>14}  {note}")

    for name in ("vigil", "baseline"):
        title = "Vigil: the pending mentions' index" if name == "vigil" else "baseline: a scan per 10,000"
        line(
            title,
            f"{results[f'routing_{name}_s']:.2f} s",
            f"{results[f'routing_{name}_statements']:,} statements;"
            f" {results[f'routing_{name}_alerted']:,} alerted, {results[f'routing_{name}_emails']:,} emails",
        )
    line(
        "ratio",
        f"{results['routing_baseline_s'] / results['routing_vigil_s']:.1f}x slower",
        "same alerts" if results["routing_same_alerts"] else "ALERTS DIFFER",
    )
    for name in ("vigil", "baseline"):
        line(
            f"pass with nothing to route, {name}",
            f"{results[f'routing_{name}_idle_ms']} ms",
            f"{results[f'routing_{name}_idle_statements']} statements",
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
