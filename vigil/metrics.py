"""Prometheus metrics for ``vigil run``.

Events this process handled are counters incremented from the pipeline steps' reports; state that
lives in the database (outbox depth, emails sent, mentions waiting, open cases) is read at scrape
time, so it is right however many workers there are and survives restarts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from vigil.runtime import Runtime

log = logging.getLogger(__name__)

REGISTRY = CollectorRegistry()
POSTS_READ = Counter("vigil_posts_read", "Posts read from each source.", ["source"], registry=REGISTRY)
MENTIONS_COLLECTED = Counter(
    "vigil_mentions_collected",
    "Mentions stored from each source (new, matched posts).",
    ["source"],
    registry=REGISTRY,
)
SOURCE_ERRORS = Counter("vigil_source_errors", "Failed polls of each source.", ["source"], registry=REGISTRY)
CLASSIFICATIONS = Counter("vigil_classifications", "Mentions labelled by the classifier.", registry=REGISTRY)
MODEL_LATENCY = Histogram(
    "vigil_model_latency_seconds",
    "Seconds the classifier took per mention, measured per batch.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
    registry=REGISTRY,
)
CASES_OPENED = Counter("vigil_cases_opened", "Emerging cases opened by detection.", registry=REGISTRY)
JOB_RUNS = Counter("vigil_job_runs", "Scheduled job runs by outcome.", ["job", "outcome"], registry=REGISTRY)


class DatabaseCollector(Collector):
    """Reads the pipeline's state from the database at each scrape."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[Any]:
        from vigil.models import Case, CaseStatus, Mention, OutboxMessage, OutboxStatus

        depth = GaugeMetricFamily(
            "vigil_outbox_messages", "Emails in the outbox by state.", labels=["status"]
        )
        sent = CounterMetricFamily("vigil_emails_sent", "Emails delivered, by kind.", labels=["kind"])
        waiting = GaugeMetricFamily("vigil_mentions_unclassified", "Mentions waiting for the classifier.")
        cases = GaugeMetricFamily("vigil_cases_open", "Emerging cases not yet closed.")
        try:
            with self.runtime.read_only() as session:
                by_status = dict(
                    session.execute(
                        select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
                    ).all()
                )
                for status in OutboxStatus:
                    depth.add_metric([status.value], by_status.get(status, 0))
                sent_by_kind = select(OutboxMessage.kind, func.count()).where(
                    OutboxMessage.status == OutboxStatus.SENT
                )
                for kind, count in session.execute(sent_by_kind.group_by(OutboxMessage.kind)):
                    sent.add_metric([kind], count)
                waiting.add_metric(
                    [],
                    session.scalar(
                        select(func.count()).select_from(Mention).where(~Mention.classification.has())
                    )
                    or 0,
                )
                open_cases = select(func.count()).select_from(Case).where(Case.status != CaseStatus.CLOSED)
                cases.add_metric([], session.scalar(open_cases) or 0)
        except Exception as exc:  # a scrape must answer even when the database does not
            log.warning("metrics: cannot read the database: %s", exc)
            return
        yield from (depth, sent, waiting, cases)
