from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import pytest
from apscheduler.job import Job
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import func, inspect, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

import collector.run
from tests.collector.fakes.corpus import more_items
from tests.collector.fakes.feeds import FakeFeeds
from tests.collector.fakes.server import FakeServer, loopback_only  # noqa: F401  (autouse)
from tests.conftest import Tenancy
from vigil import migrate, scheduler, service
from vigil.models import Mention, OperatorEvent
from vigil.runtime import Runtime
from vigil.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    runtime = Runtime(
        settings.with_overrides(
            sources__rss__enabled=True,
            sources__rss__feeds=["http://127.0.0.1:9/feeds/alerts-0"],
            sources__careopinion__enabled=True,
            sources__careopinion__api_key="key",
            scheduler__jitter_seconds=0,
            service__port=0,
        )
    )
    yield runtime
    with runtime.engine.begin() as connection:  # APScheduler's table is not one of ours to truncate
        connection.execute(text(f"DROP TABLE IF EXISTS {scheduler.JOBS_TABLE}"))
    runtime.close()


def job_ids(runtime: Runtime) -> list[str]:
    with runtime.engine.connect() as connection:
        return sorted(connection.execute(text(f"SELECT id FROM {scheduler.JOBS_TABLE}")).scalars())


def test_each_enabled_source_has_one_job_with_a_stable_id(runtime: Runtime) -> None:
    specs = scheduler.collector_jobs(runtime.settings)
    assert [spec.id for spec in specs] == ["collect:rss", "collect:careopinion"]
    assert {spec.trigger.interval.total_seconds() for spec in specs} == {1800, 3600}  # type: ignore[attr-defined]
    built = scheduler.build_scheduler(runtime, scheduler.scheduled_jobs(runtime.settings))
    built.shutdown(wait=False)
    assert job_ids(runtime) == ["collect:careopinion", "collect:rss", "digests", "pipeline", "retention"]
    assert "apscheduler_jobs" in inspect(runtime.engine).get_table_names()


def test_every_trigger_runs_on_utc_whatever_the_hosts_time_zone() -> None:
    """A host TZ in POSIX form ("GMT0BST,...") is one APScheduler cannot read: never ask it."""
    script = (
        "from vigil.scheduler import scheduled_jobs; from vigil.settings import load_settings;"
        " print({str(s.trigger.timezone) for s in scheduled_jobs(load_settings(environ={}))})"
    )
    environment = {"PATH": os.environ.get("PATH", ""), "TZ": "GMT0BST,M3.5.0/1,M10.5.0"}
    run = subprocess.run(
        [sys.executable, "-c", script], env=environment, cwd=ROOT, capture_output=True, text=True
    )
    assert run.stdout.strip() == "{'UTC'}", run.stderr


def test_a_restart_replaces_the_jobs_keeps_their_next_run_and_drops_disabled_ones(runtime: Runtime) -> None:
    first = scheduler.build_scheduler(runtime, scheduler.scheduled_jobs(runtime.settings))
    next_run = first.get_job("collect:rss").next_run_time
    first.shutdown(wait=False)
    without_careopinion = Runtime(runtime.settings.with_overrides(sources__careopinion__enabled=False))
    again = scheduler.build_scheduler(
        without_careopinion, scheduler.scheduled_jobs(without_careopinion.settings)
    )
    jobs = again.get_jobs()
    again.shutdown(wait=False)
    without_careopinion.close()
    assert [job.id for job in jobs if job.id.startswith("collect:")] == ["collect:rss"]
    rss = next(job for job in jobs if job.id == "collect:rss")
    assert rss.next_run_time == next_run
    assert all(job.coalesce and job.max_instances == 1 for job in jobs)


def test_the_scheduler_collects_and_stops_when_asked(settings: Settings, alice: Tenancy) -> None:
    server = FakeServer()
    feeds = FakeFeeds(server)
    feeds.items += more_items(feeds.items, 2, "Dr Amira Hassan in Leeds")
    runtime = Runtime(
        settings.with_overrides(
            sources__rss__enabled=True,
            sources__rss__feeds=feeds.urls(server.base_url),
            scheduler__jitter_seconds=0,
            service__port=0,
        )
    )
    stop = threading.Event()

    def stop_when_stored() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not stop.is_set():
            with runtime.transaction() as session:
                if session.scalar(select(func.count()).select_from(Mention)) == 2:
                    break
            time.sleep(0.1)
        stop.set()

    watcher = threading.Thread(target=stop_when_stored)
    watcher.start()
    try:
        scheduler.run(runtime, until=stop)
    finally:
        watcher.join()
        with runtime.engine.begin() as connection:
            connection.execute(text(f"DROP TABLE IF EXISTS {scheduler.JOBS_TABLE}"))
        runtime.close()
        server.close()
    assert len(server.calls("/feeds/.*")) >= 1


def test_a_poll_that_raises_is_a_failed_job_that_degrades_health_and_tells_the_operator(
    runtime: Runtime, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreadable_register(session: Session, settings: Settings) -> None:
        session.execute(text("SELECT version FROM no_such_register"))

    monkeypatch.setattr(collector.run, "load_context", unreadable_register)
    monkeypatch.setattr(service, "JOB_FAILURES", {})
    monkeypatch.setattr(service, "JOBS_REPORTED", set())
    told_at_once = Runtime(runtime.settings.with_overrides(service__failure_alert_after=1))
    with scheduler.jobs_runtime(told_at_once):
        scheduler.collect_job("rss")  # APScheduler would only log an exception, and carry on
    status, body = service.health(told_at_once, lambda: True)
    told_at_once.close()
    assert (status, body["status"], body["jobs"]) == (
        200,
        "degraded",
        {"collect rss": {"consecutive_failures": 1}},
    )
    [event] = session.scalars(select(OperatorEvent)).all()
    assert (event.kind, event.subject) == ("job_failing", "Vigil's collect rss job is failing")
    assert "no_such_register" in event.message


def test_vigil_run_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "VIGIL_DATABASE__URL": f"sqlite:///{tmp_path}/vigil.db",
        "VIGIL_SOURCES__RSS__ENABLED": "true",
        "VIGIL_SOURCES__RSS__FEEDS": "http://127.0.0.1:9/feed",
        "VIGIL_SERVICE__PORT": "0",
    }
    subprocess.run(
        [sys.executable, "-m", "vigil", "db", "upgrade"], env=environment, check=True, capture_output=True
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "vigil", "run"], env=environment, cwd=ROOT, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stderr is not None
        for line in process.stderr:
            if "scheduler running" in line:
                break
        process.send_signal(signal.SIGTERM)
        _, rest = process.communicate(timeout=30)
    finally:
        process.kill()  # never leave a scheduler behind, whatever happened
    assert process.returncode == 0, rest
    assert "scheduler stopped" in rest


steps_run: list[tuple[object, tuple[object, ...]]] = []


def record_step(runtime: Runtime, *args: object) -> None:
    steps_run.append((runtime, args))


def test_a_step_taking_the_runtime_runs_with_the_schedulers_runtime(runtime: Runtime) -> None:
    steps_run.clear()
    with scheduler.jobs_runtime(runtime):
        scheduler.run_step(f"{__name__}:record_step", "weekly")
    assert steps_run == [(runtime, ("weekly",))]
    with pytest.raises(RuntimeError, match="jobs run inside `vigil run`"):
        scheduler.current_runtime()


def test_vigil_run_will_not_start_without_its_database_or_on_a_schema_behind_the_code(tmp_path: Path) -> None:
    path = tmp_path / "vigil.db"
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "VIGIL_DATABASE__URL": f"sqlite:///{path}",
        "VIGIL_SERVICE__PORT": "0",
    }

    def vigil(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "vigil", *args]
        return subprocess.run(command, env=environment, cwd=ROOT, capture_output=True, text=True, timeout=60)

    missing = vigil("run")
    assert (missing.returncode, missing.stderr.strip()) == (
        1,
        f"error: no database at {path} (setting database.url): check the path, or run `vigil db upgrade`"
        " to create it",
    )
    assert not path.exists()  # a typo in the path does not leave an empty database behind
    head = migrate.head_revision()
    assert head is not None
    previous = migrate.script_directory().get_revision(head).down_revision
    assert vigil("db", "upgrade", str(previous)).returncode == 0
    behind = vigil("run")
    assert (behind.returncode, behind.stderr.strip()) == (
        1,
        f"error: the database sqlite:///{path} is at schema {previous}, and this version of Vigil needs"
        f" {head}: run `vigil db upgrade` first",
    )


def test_vigil_run_will_not_start_with_a_broken_guidance_file(tmp_path: Path) -> None:
    guidance = tmp_path / "guidance"
    shutil.copytree(ROOT / "config" / "guidance", guidance)
    (guidance / "abusive.md").write_text("# Abuse\n\nCall {{ advice_phone }}.\n")
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "VIGIL_DATABASE__URL": f"sqlite:///{tmp_path}/vigil.db",
        "VIGIL_ALERTS__GUIDANCE_DIR": str(guidance),
        "VIGIL_SERVICE__PORT": "0",
    }
    run = subprocess.run(
        [sys.executable, "-m", "vigil", "run"],
        env=environment,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode != 0
    assert "abusive.md: 'advice_phone' is undefined" in run.stderr


ticks = threading.Semaphore(0)


def tick() -> None:
    ticks.release()


def test_the_scheduler_keeps_running_its_jobs_after_the_database_refuses_a_next_run_time(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL restarting (or a terminated connection) just as the scheduler records when a job
    next runs used to end the scheduler's thread: nothing ran again, and /healthz said running."""
    every_second = scheduler.JobSpec("tick", f"{__name__}:tick", IntervalTrigger(seconds=1, timezone=UTC))
    built = scheduler.build_scheduler(runtime, [every_second])
    built.jobstore_retry_interval = 0.1
    update_job = SQLAlchemyJobStore.update_job
    refused: list[str] = []

    def refuse_once(store: SQLAlchemyJobStore, job: Job) -> None:
        if not refused:
            refused.append(job.id)
            raise OperationalError("UPDATE apscheduler_jobs", {}, Exception("terminating connection"))
        update_job(store, job)

    monkeypatch.setattr(SQLAlchemyJobStore, "update_job", refuse_once)
    built.resume()
    try:
        ran_twice = ticks.acquire(timeout=30) and ticks.acquire(timeout=30)
    finally:
        built.shutdown(wait=True)
    assert refused == ["tick"]
    assert ran_twice
