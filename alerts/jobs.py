"""Entry points for the scheduler and the CLI: thin, safe to run twice at once or on two workers.

* ``send_alerts(runtime)``: route new classified mentions and operator events, then deliver the
  outbox. Run it every minute or so.
* ``send_due_digests(runtime)``: build and send last week's digests when they are due (the
  ``digest.day`` and ``digest.time`` settings), and do nothing otherwise. Run it every few
  minutes; repeats within the sending window find the digests already built.
* ``deliver_outbox(runtime)``: only deliver what is already in the outbox.

They are plain module-level functions taking the ``Runtime``, so APScheduler can store them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine

from alerts.config import AlertsConfig, load_config
from alerts.digest import DigestReport, build_digests
from alerts.operator import notify_operator
from alerts.outbox import DeliveryReport, deliver
from alerts.routing import BATCH, SCAN, RoutingReport, enqueue_due_alerts, pending_mentions, route_batch
from alerts.weeks import Week, due_week, require_ended
from vigil.claims import lock_routing
from vigil.db import read_only, transaction
from vigil.models import utcnow
from vigil.runtime import Runtime


@dataclass(frozen=True)
class AlertsPass:
    routing: RoutingReport
    operator_events: int
    delivery: DeliveryReport


def send_alerts(runtime: Runtime, now: datetime | None = None) -> AlertsPass:
    """Route, tell the operator, then deliver: the operator's email and the outbox go out even when
    routing fails, so alerts already queued are sent and the operator hears of the failure (it is
    raised afterwards)."""
    config = load_config(runtime.settings)
    now = now or utcnow()
    try:
        try:
            routing = route_new_mentions(runtime.engine, config, now)
        finally:
            with runtime.transaction() as session:
                events = notify_operator(session, config, now)
    finally:
        delivery = deliver(runtime.engine, config.email, now=now)
    return AlertsPass(routing, events, delivery)


def route_new_mentions(engine: Engine, config: AlertsConfig, now: datetime) -> RoutingReport:
    """Route every pending mention, a batch per transaction, enqueueing alerts as they fall due.

    The pending mentions are found up to SCAN at a time (``pending_mentions``, which takes no
    lock) and routed a batch at a time; a read that found its limit is followed by another.
    Mentions that become pending after the last read are routed by the next pass."""
    total = RoutingReport()
    while True:
        with read_only(engine) as session:
            pending = pending_mentions(session, SCAN)
        for start in range(0, max(len(pending), 1), BATCH):  # once at least: alerts fall due
            total.add(route_and_enqueue(engine, config, now, pending[start : start + BATCH]))
        if len(pending) < SCAN:
            return total


def route_and_enqueue(engine: Engine, config: AlertsConfig, now: datetime, ids: list[int]) -> RoutingReport:
    """One transaction under the routing lock: route those of ``ids`` still pending, then enqueue
    the alerts that are due."""
    with transaction(engine) as session:
        lock_routing(session)
        batch = route_batch(session, config, now, ids)
        batch.emails = enqueue_due_alerts(session, config, now)
    return batch


def send_due_digests(runtime: Runtime, now: datetime | None = None) -> DigestReport | None:
    config = load_config(runtime.settings)
    now = now or utcnow()
    digest = config.digest
    week = due_week(now, digest.weekday, digest.time, digest.timezone)
    if week is None:
        return None
    report = build_digests(runtime.engine, config, week, now=now)
    deliver(runtime.engine, config.email, now=now)
    return report


def deliver_outbox(runtime: Runtime, now: datetime | None = None) -> DeliveryReport:
    return deliver(runtime.engine, load_config(runtime.settings).email, now=now)


def last_complete_week(config: AlertsConfig, now: datetime | None = None) -> Week:
    return Week.containing(now or utcnow(), config.digest.timezone).previous()


def chosen_week(config: AlertsConfig, week: str = "", now: datetime | None = None) -> Week:
    """The week a digest command asks for, which must have ended (a week still running would be
    digested once, without its last days); last week if it names none."""
    if not week:
        return last_complete_week(config, now)
    return require_ended(Week.parse(week), now or utcnow(), config.digest.timezone)
