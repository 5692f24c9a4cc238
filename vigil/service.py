"""``vigil run`` beyond collecting: the pipeline job, the digest job, and the health/metrics endpoint.

The pipeline job runs classify → detect cases → send alerts in that order, every
``service.pipeline_seconds``; each step claims its own work in the database, so a second worker
(or a manual ``vigil classify``) running meanwhile does no harm. Collection runs as one job per
source on its own interval (``vigil.scheduler``), and the digests as a frequent check that sends
once they are due.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

from apscheduler.triggers.interval import IntervalTrigger
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from vigil import metrics
from vigil.errors import VigilError, describe
from vigil.runtime import Runtime
from vigil.settings import Settings

log = logging.getLogger(__name__)
_T = TypeVar("_T")


@dataclass
class PipelineReport:
    classified: int = 0
    cases_opened: int = 0
    alerts_queued: int = 0
    emails_sent: int = 0

    def __str__(self) -> str:
        return (
            f"{self.classified} classified, {self.cases_opened} cases opened, "
            f"{self.alerts_queued} alert emails queued, {self.emails_sent} emails sent"
        )


class PipelineError(VigilError):
    """One or more pipeline steps failed (each is logged with its traceback)."""


def run_pipeline(runtime: Runtime, stop: threading.Event | None = None) -> PipelineReport:
    """Classify what is pending, detect cases, then route and send alerts (one pass of each).

    A failing step does not hold back the later ones: a model that will not load must not keep
    the alerts already classified, or the emails already queued, from going out.
    """
    from alerts.jobs import send_alerts
    from cases.jobs import detect

    report = PipelineReport()
    failed: list[str] = []
    with _step("classify", failed):
        report.classified = classify(runtime, stop)
    if stop is None or not stop.is_set():
        with _step("detect cases", failed):
            cases = detect(runtime)
            report.cases_opened = len(cases.opened)
            metrics.CASES_OPENED.inc(len(cases.opened))
        with _step("send alerts", failed):
            alerts = send_alerts(runtime)
            report.alerts_queued = alerts.routing.emails
            report.emails_sent = alerts.delivery.sent
    if failed:
        raise PipelineError(f"pipeline step(s) failed: {', '.join(failed)} ({report})")
    return report


@contextmanager
def _step(name: str, failed: list[str]) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        _log_failure(f"pipeline step {name} failed", exc)
        failed.append(f"{name} [{describe(exc)}]")


def _log_failure(what: str, exc: Exception, **extra: Any) -> None:
    """A known problem (a VigilError: no model, a bad setting) in one line, as its message says it
    all; anything else with its traceback."""
    if isinstance(exc, VigilError):
        log.error("%s: %s", what, exc, extra=extra)
    else:
        log.error("%s", what, exc_info=exc, extra=extra)


def classify(runtime: Runtime, stop: threading.Event | None = None) -> int:
    """Label every pending mention with the configured model, timing each batch for the metrics."""
    from classifier.model import get_classifier
    from classifier.step import classify_pending

    started = time.perf_counter()

    def on_batch(count: int) -> None:
        nonlocal started
        elapsed = time.perf_counter() - started
        for _ in range(count):
            metrics.MODEL_LATENCY.observe(elapsed / count)
        metrics.CLASSIFICATIONS.inc(count)
        started = time.perf_counter()

    return classify_pending(runtime, get_classifier(runtime.settings), on_batch=on_batch, stop=stop)


def check_start(settings: Settings) -> None:
    """Stop ``vigil run`` at start-up, not at the first threat alert, if the alerts settings or a
    guidance file are wrong (later edits to a guidance file fall back to the last good one)."""
    from alerts.config import load_config
    from alerts.guidance import read_guidance

    config = load_config(settings)
    read_guidance(config.guidance_dir, config.organisation_name, config.advice_line)


# --- scheduled jobs (module-level, picklable: see vigil.scheduler) -------------------------------


def pipeline_job() -> None:
    from vigil.scheduler import STOPPING, current_runtime

    runtime = current_runtime()
    recorded(runtime, "pipeline", lambda: run_pipeline(runtime, STOPPING))


def digests_job() -> None:
    """Send the practices' and the organisation's weekly digests once they are due (else nothing)."""
    from alerts.jobs import send_due_digests
    from cases.jobs import send_due_digest
    from vigil.scheduler import current_runtime

    runtime = current_runtime()
    recorded(runtime, "digests", lambda: send_due_digests(runtime))
    recorded(runtime, "case digest", lambda: send_due_digest(runtime))


# Runs of each job that failed in a row, in this process: what /healthz reports. And the jobs the
# operator has been told are failing (one scheduler runs per database, so this process knows).
JOB_FAILURES: dict[str, int] = {}
JOBS_REPORTED: set[str] = set()
# When each job's run in progress began (monotonic seconds): a run that never returns (a database
# lock wait, a half-open connection) would otherwise go unseen, as max_instances=1 skips later runs.
JOB_STARTED: dict[str, float] = {}
# When a job last began (at first, when this process started). None beginning for many passes,
# while the scheduler says it runs, means it cannot read its job store (on SQLite, another writer
# holding the lock): nothing runs, and nothing fails to say so.
LAST_JOB_START = [time.monotonic()]


def recorded(runtime: Runtime, job: str, work: Callable[[], Any]) -> None:
    """Run a job, count its failures in a row, and tell the operator when it keeps failing (a
    model that will not load stops every threat alert) and again when it works."""
    failures = JOB_FAILURES.get(job, 0)
    try:
        with _running(job):
            result = work()
    except Exception as exc:
        metrics.JOB_RUNS.labels(job, "failed").inc()
        JOB_FAILURES[job] = failures + 1
        _log_failure(f"job {job} failed", exc, job=job)
        if failures + 1 >= int(runtime.settings.service.failure_alert_after) and job not in JOBS_REPORTED:
            message = f"The {job} job failed {failures + 1} times in a row, the last with: {describe(exc)}."
            if _tell_operator(runtime, "job_failing", f"Vigil's {job} job is failing", message):
                JOBS_REPORTED.add(job)
        return
    metrics.JOB_RUNS.labels(job, "ok").inc()
    log.info("job %s: %s", job, result, extra={"job": job})
    if result is None:  # nothing was due (a digest job most of the week): no news of its health
        return
    JOB_FAILURES[job] = 0
    if job in JOBS_REPORTED:
        message = f"The {job} job ran again: {result}."
        if _tell_operator(runtime, "job_recovered", f"Vigil's {job} job works again", message):
            JOBS_REPORTED.discard(job)


@contextmanager
def _running(job: str) -> Iterator[None]:
    """Mark a run of ``job`` as in progress while it lasts, for /healthz to see one that is stuck."""
    JOB_STARTED[job] = LAST_JOB_START[0] = time.monotonic()
    try:
        yield
    finally:
        JOB_STARTED.pop(job, None)


def _tell_operator(runtime: Runtime, kind: str, subject: str, message: str) -> bool:
    """Store an operator event (emailed by the next pipeline pass); False if the database refused."""
    from vigil.ops import raise_operator_event

    try:
        with runtime.transaction() as session:
            raise_operator_event(session, kind, subject, message)
    except Exception as exc:
        _log_failure(f"could not record the operator event {subject!r}", exc)
        return False
    return True


def service_jobs(settings: Settings) -> list[Any]:
    from vigil.scheduler import JobSpec

    return [
        JobSpec(
            "pipeline", "vigil.service:pipeline_job",
            IntervalTrigger(seconds=int(settings.service.pipeline_seconds), timezone=UTC),
            name="Classify, detect cases, send alerts",
        ),
        JobSpec(
            "digests", "vigil.service:digests_job",
            IntervalTrigger(minutes=int(settings.service.digest_check_minutes), timezone=UTC),
            name="Send weekly digests when due",
        ),
    ]  # fmt: skip


# --- health and metrics endpoint -----------------------------------------------------------------


def health(runtime: Runtime, scheduler_running: Callable[[], bool]) -> tuple[int, dict[str, Any]]:
    """What ``/healthz`` answers: 200 while the database answers (within ``DATABASE_DEADLINE``) and
    the scheduler runs, else 503.

    The status is ``degraded`` (still 200: restarting would not help) while a source or a job (the
    pipeline: no model, say) keeps failing, a job has been running far too long (stuck), no job
    has begun for as long (the scheduler cannot read its jobs), or an
    urgent email (an alert, the operator's own) is still waiting long after it was queued (the
    mail server is down or refuses the login); the details say which. It only reads, so on SQLite
    it answers even while a job holds the write lock.
    """
    body: dict[str, Any] = {"time": datetime.now(UTC).isoformat(timespec="seconds")}
    ok = scheduler_running()
    body["scheduler"] = "running" if ok else "stopped"
    try:
        states, late_email = _within(DATABASE_DEADLINE, lambda: _read_health(runtime))
        body["database"] = "ok"
    except Exception as exc:
        body["database"] = f"unreachable: {type(exc).__name__}"
        body["status"] = "failing"
        return 503, body
    threshold = int(runtime.settings.collector.failure_alert_after)
    job_threshold = int(runtime.settings.service.failure_alert_after)
    body["sources"] = {
        state.source: {
            "last_success": state.last_success_at.isoformat(timespec="seconds")
            if state.last_success_at
            else None,
            "consecutive_failures": state.consecutive_failures,
        }
        for state in states
    }
    body["jobs"] = {job: {"consecutive_failures": count} for job, count in sorted(JOB_FAILURES.items())}
    failing = [s.source for s in states if s.consecutive_failures >= threshold]
    failing += [job for job, count in JOB_FAILURES.items() if count >= job_threshold]
    running = {job: time.monotonic() - since for job, since in list(JOB_STARTED.items())}
    body["running"] = {job: round(seconds) for job, seconds in sorted(running.items())}
    stuck_after = _overdue_after(runtime.settings, passes=10)
    failing += [job for job, seconds in running.items() if seconds >= stuck_after]
    idle = time.monotonic() - LAST_JOB_START[0]
    if ok and not running and idle >= stuck_after:
        body["idle"] = round(idle)  # seconds since any job began
        failing.append("scheduler")
    if late_email is not None:
        body["email"] = late_email
        failing.append("email")
    body["status"] = "failing" if not ok else ("degraded" if failing else "ok")
    return (200 if ok else 503), body


# Seconds /healthz waits for the database. A server that accepts connections but never answers
# (frozen, or gone behind a network that drops packets) would otherwise hold every probe forever.
DATABASE_DEADLINE = 10.0


def _read_health(runtime: Runtime) -> tuple[Sequence[Any], dict[str, Any] | None]:
    """The sources' states and the late urgent email, read in one read-only session."""
    from vigil.models import SourceState

    with runtime.read_only() as session:
        session.execute(text("SELECT 1"))
        states = session.scalars(select(SourceState).order_by(SourceState.source)).all()
        return states, _late_urgent_email(session, _overdue_after(runtime.settings, passes=5))


def _within(seconds: float, work: Callable[[], _T]) -> _T:
    """``work()``, run in a thread of its own so that the caller gives up after ``seconds``
    (TimeoutError) instead of waiting on a socket that never answers; the thread is left to end
    when the connection does."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append((True, work()))
        except Exception as exc:
            outcome.append((False, exc))

    thread = threading.Thread(target=run, name="healthz-database", daemon=True)
    thread.start()
    thread.join(seconds)
    if not outcome:
        raise TimeoutError(f"no answer in {seconds:g} s")
    done, value = outcome[0]
    if not done:
        raise value
    return value


def _overdue_after(settings: Settings, passes: int) -> float:
    """Seconds after which what the pipeline does every pass is overdue: ``passes`` pipeline
    intervals, and at least 15 minutes, so that one slow pass is not reported."""
    return max(15 * 60.0, passes * float(settings.service.pipeline_seconds))


def _late_urgent_email(session: Session, late_after: float) -> dict[str, Any] | None:
    """The urgent emails still waiting if the oldest was queued more than ``late_after`` seconds ago
    (each pass sends them: any left that long are not leaving), with that email's last error."""
    from alerts.outbox import URGENT
    from vigil.models import OutboxMessage, OutboxStatus

    waiting = (OutboxMessage.priority == URGENT) & OutboxMessage.status.in_(
        [OutboxStatus.PENDING, OutboxStatus.SENDING]
    )
    oldest = session.execute(
        select(OutboxMessage.created_at, OutboxMessage.last_error)
        .where(waiting)
        .order_by(OutboxMessage.created_at, OutboxMessage.id)
        .limit(1)
    ).first()
    if oldest is None or (datetime.now(UTC) - oldest.created_at).total_seconds() < late_after:
        return None
    return {
        "urgent_waiting": session.scalar(select(func.count()).where(waiting)),
        "oldest": oldest.created_at.isoformat(timespec="seconds"),
        "last_error": re.sub(r"\S+@\S+", "<address>", oldest.last_error or "")[:200],  # no tenant's address
    }


class HealthServer:
    """``/healthz`` (JSON) and ``/metrics`` (Prometheus text) on a local port, in a thread."""

    def __init__(self, runtime: Runtime, scheduler_running: Callable[[], bool]) -> None:
        settings = runtime.settings.service
        try:  # a port in use or a host name that does not resolve: one line naming the settings
            self._server = ThreadingHTTPServer(
                (settings.listen_host, int(settings.port)), _handler(runtime, scheduler_running)
            )
        except OSError as exc:
            raise VigilError(
                f"cannot serve /healthz on {settings.listen_host}:{settings.port} (settings"
                f" service.listen_host, service.port): {exc.strerror or exc}"
            ) from exc
        metrics.REGISTRY.register(collector := metrics.DatabaseCollector(runtime))
        self._collector = collector
        self._thread = threading.Thread(target=self._server.serve_forever, name="health", daemon=True)

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> HealthServer:
        self._thread.start()
        log.info("health and metrics at %s/healthz and %s/metrics", self.address, self.address)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        metrics.REGISTRY.unregister(self._collector)


def _handler(runtime: Runtime, scheduler_running: Callable[[], bool]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                status, body = health(runtime, scheduler_running)
                self._reply(status, "application/json", json.dumps(body).encode())
            elif path == "/metrics":
                self._reply(200, CONTENT_TYPE_LATEST, generate_latest(metrics.REGISTRY))
            else:
                self._reply(404, "text/plain; charset=utf-8", b"not found: try /healthz or /metrics\n")

        def _reply(self, status: int, content_type: str, payload: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # scrapes every few seconds would drown the log

    return Handler
