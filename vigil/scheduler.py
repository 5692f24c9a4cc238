"""``vigil run``: one scheduler process running every pipeline step on its schedule.

APScheduler 3 keeps the jobs in Vigil's database (table ``apscheduler_jobs``, which belongs to
APScheduler and is left out of the migrations). Jobs are pickled there, so each job function is
a module-level function taking only plain arguments; it finds the process's runtime through
``current_runtime()``. Every job has a stable id and is added with ``replace_existing``, so a
restart updates the jobs instead of adding copies, and keeps each job's next run time. Jobs of
steps no longer configured (a source disabled) are removed at start-up.

Run exactly one scheduler per database (APScheduler's job store is not safe to share between
processes). Every step is idempotent, so a manual ``vigil collect --once`` meanwhile does no harm.

Later steps add their jobs here: write a function ``settings -> list[JobSpec]`` and list it in
``JOB_PROVIDERS``. A step whose entry point takes the runtime (``send_alerts(runtime)``) runs
through ``run_step``, which passes it the process's runtime (a runtime cannot be pickled)::

    def alerts_jobs(settings: Settings) -> list[JobSpec]:
        return [
            JobSpec("alerts:send", STEP, IntervalTrigger(minutes=1), ("alerts.jobs:send_alerts",)),
            JobSpec("alerts:digests", STEP, CronTrigger(minute="*/5"), ("alerts.jobs:send_due_digests",)),
        ]
"""

from __future__ import annotations

import importlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from vigil import metrics
from vigil.retention import retention_jobs
from vigil.runtime import Runtime
from vigil.service import recorded
from vigil.settings import Settings

log = logging.getLogger(__name__)

JOBS_TABLE = "apscheduler_jobs"
_runtime: Runtime | None = None
# Set when the process is asked to stop: long jobs finish their current batch and return.
STOPPING = threading.Event()


@dataclass(frozen=True)
class JobSpec:
    id: str
    func: str  # "module:function", importable and taking only picklable arguments
    trigger: BaseTrigger
    args: tuple[Any, ...] = ()
    name: str = ""
    options: dict[str, Any] = field(default_factory=dict)


def current_runtime() -> Runtime:
    if _runtime is None:
        raise RuntimeError("no scheduler runtime: jobs run inside `vigil run`")
    return _runtime


@contextmanager
def jobs_runtime(runtime: Runtime) -> Iterator[None]:
    """Make ``runtime`` the one scheduled jobs use while the block runs."""
    global _runtime
    _runtime = runtime
    try:
        yield
    finally:
        _runtime = None


# ---------------------------------------------------------------------------------------------
# Jobs
# ---------------------------------------------------------------------------------------------


def collect_job(source: str) -> None:
    """Scheduled poll of one source (each source is its own job: a slow one delays no other).

    A failed poll is the source's own health (``collector.run``); an exception escaping the poll
    (the register cannot be read) counts as a failed job, so /healthz and the operator hear of it.
    """
    from collector.run import collect_once

    runtime = current_runtime()

    def poll() -> str:
        for report in collect_once(runtime, source, stop=STOPPING):
            metrics.POSTS_READ.labels(report.source).inc(report.posts_read)
            metrics.MENTIONS_COLLECTED.labels(report.source).inc(report.store.stored)
            if report.error:
                metrics.SOURCE_ERRORS.labels(report.source).inc()
        return f"{source} polled"

    recorded(runtime, f"collect {source}", poll)


def run_step(target: str, *args: Any) -> None:
    """Scheduled run of a pipeline step given as "module:function", called with the runtime."""
    module, _, name = target.partition(":")
    getattr(importlib.import_module(module), name)(current_runtime(), *args)


STEP = "vigil.scheduler:run_step"


def collector_jobs(settings: Settings) -> list[JobSpec]:
    from collector.sources import enabled_sources

    jitter = int(settings.scheduler.jitter_seconds) or None
    return [
        JobSpec(
            id=f"collect:{name}",
            func="vigil.scheduler:collect_job",
            trigger=IntervalTrigger(
                minutes=int(getattr(settings.sources, name).interval_minutes), jitter=jitter, timezone=UTC
            ),
            args=(name,),
            name=f"Collect from {name}",
        )
        for name in enabled_sources(settings)
    ]


def _service_jobs(settings: Settings) -> list[JobSpec]:
    from vigil.service import service_jobs

    return service_jobs(settings)


JOB_PROVIDERS: list[Callable[[Settings], list[JobSpec]]] = [collector_jobs, _service_jobs, retention_jobs]


def scheduled_jobs(settings: Settings) -> list[JobSpec]:
    return [spec for provider in JOB_PROVIDERS for spec in provider(settings)]


# ---------------------------------------------------------------------------------------------
# The scheduler
# ---------------------------------------------------------------------------------------------


class _Scheduler(BackgroundScheduler):
    """APScheduler 3 retries a job store that fails to list the due jobs, but any other failure of
    its pass (the database going away while it writes a job's next run time) ends its thread: no
    job ever ran again, and /healthz still said the scheduler was running. This one logs the
    failure and tries again after ``jobstore_retry_interval``, as for the due jobs."""

    def _process_jobs(self) -> float | None:
        try:
            return super()._process_jobs()
        except Exception:
            log.exception(
                "the scheduler could not update its jobs; trying again in %gs", self.jobstore_retry_interval
            )
            return float(self.jobstore_retry_interval)


def build_scheduler(runtime: Runtime, specs: list[JobSpec]) -> BackgroundScheduler:
    """A scheduler on Vigil's database with every job in ``specs`` (added or updated)."""
    scheduler = _Scheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=runtime.engine, tablename=JOBS_TABLE)},
        executors={"default": ThreadPoolExecutor(max_workers=max(1, len(specs)))},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        timezone=UTC,
    )
    scheduler.start(paused=True)
    existing = {job.id: job for job in scheduler.get_jobs()}
    for job_id in set(existing) - {spec.id for spec in specs}:
        log.info("removing job %s: it is no longer configured", job_id)
        scheduler.remove_job(job_id)
    for spec in specs:
        previous = existing.get(spec.id)
        first_run = previous.next_run_time if previous else datetime.now(UTC) + timedelta(seconds=1)
        scheduler.add_job(
            spec.func,
            spec.trigger,
            args=spec.args,
            id=spec.id,
            name=spec.name or spec.id,
            replace_existing=True,
            next_run_time=first_run,
            **spec.options,
        )
    return scheduler


def run(runtime: Runtime, until: threading.Event | None = None) -> None:
    """Run the scheduler until SIGTERM or SIGINT (or ``until`` is set); stop after current batches."""
    stop = until or threading.Event()
    STOPPING.clear()
    if until is None:
        # A signal handler only sets the event: logging from it could re-enter a write in progress.
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda number, frame: stop.set())
    with jobs_runtime(runtime):
        scheduler = build_scheduler(runtime, scheduled_jobs(runtime.settings))
        with _health_endpoint(runtime, scheduler):
            _run_until(scheduler, stop)


@contextmanager
def _health_endpoint(runtime: Runtime, scheduler: BackgroundScheduler) -> Iterator[None]:
    if not int(runtime.settings.service.port):
        yield
        return
    from apscheduler.schedulers.base import STATE_RUNNING

    from vigil.service import HealthServer

    with HealthServer(runtime, lambda: scheduler.state == STATE_RUNNING):
        yield


def _run_until(scheduler: BackgroundScheduler, stop: threading.Event) -> None:
    scheduler.resume()
    if not scheduler.get_jobs():
        log.warning("nothing is scheduled: enable a source (sources.<name>.enabled, see docs/collector.md)")
    log.info(
        "scheduler running %d job(s): %s",
        len(scheduler.get_jobs()),
        ", ".join(j.id for j in scheduler.get_jobs()),
    )
    try:
        stop.wait()
    finally:
        log.info("stopping (SIGTERM, SIGINT or asked to): letting running jobs finish their current batch")
        STOPPING.set()
        # Paused first: while shutdown waits for running jobs, a scheduling pass would hand a due
        # job to the executor being shut down, and log a harmless but alarming error.
        scheduler.pause()
        scheduler.shutdown(wait=True)
        STOPPING.clear()  # every job has ended: nothing left to stop, and retries work again
        log.info("scheduler stopped")
