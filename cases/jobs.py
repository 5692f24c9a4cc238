"""Entry points for the scheduler (``vigil run``) and the CLI: thin, and safe to run twice at once.

* ``detect(runtime)``: scan newly classified mentions, open or feed cases, queue the emerging-case
  emails in the same transactions, then deliver the outbox. Run it every few minutes, after
  classification (e.g. every 5 minutes; the evaluation assumes at least hourly).
* ``send_due_digest(runtime)``: queue and send last week's organisation digest when it is due
  (the ``digest.day`` and ``digest.time`` settings, as the alerts digests), nothing otherwise.
  Run it every few minutes; the outbox keys make repeats harmless.

They are module-level functions taking the ``Runtime``, so APScheduler can store them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from alerts.config import load_config
from alerts.outbox import deliver
from alerts.weeks import Week, due_week
from cases.detect import DetectionSettings, PassReport
from cases.detect import detect as detect_cases
from cases.emails import CaseNotifier, queue_digests
from vigil.models import utcnow
from vigil.runtime import Runtime

log = logging.getLogger(__name__)


def detect(
    runtime: Runtime, now: datetime | None = None, progress: Callable[[int], None] | None = None
) -> PassReport:
    """One detection run: every pending mention, in batches, then the emails it queued are sent."""
    config = DetectionSettings.from_settings(runtime.settings)
    alerts = load_config(runtime.settings)
    notifier = CaseNotifier(alerts)
    report = detect_cases(runtime.engine, config, now, notifier, progress)
    if report.scanned:
        log.info("case detection: %s; %d emails queued", report, notifier.queued)
    if notifier.queued:
        deliver(runtime.engine, alerts.email, now=now)
    return report


def send_due_digest(runtime: Runtime, now: datetime | None = None, week: Week | None = None) -> int | None:
    """Queue (and send) the organisation digest of ``week``, or of last week when it is due now."""
    config = load_config(runtime.settings)
    now = now or utcnow()
    schedule = config.digest
    week = week or due_week(now, schedule.weekday, schedule.time, schedule.timezone)
    if week is None:
        return None
    with runtime.transaction() as session:
        queued = queue_digests(session, config, week, now)
    if queued:
        deliver(runtime.engine, config.email, now=now)
    return queued
