from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest
from sqlalchemy import Engine, select, text, update
from sqlalchemy.orm import Session

from alerts.config import load_config
from alerts.outbox import NORMAL, URGENT, enqueue
from vigil import metrics, ops, scheduler, service
from vigil.errors import VigilError
from vigil.models import OperatorEvent, OutboxMessage, OutboxStatus, SourceState
from vigil.runtime import Runtime
from vigil.service import HealthServer, PipelineError, health, run_pipeline
from vigil.settings import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    runtime = Runtime(settings)
    yield runtime
    runtime.close()


def test_health_is_ok_while_the_database_answers_and_the_scheduler_runs(runtime: Runtime) -> None:
    status, body = health(runtime, lambda: True)
    assert (status, body["status"], body["database"], body["scheduler"]) == (200, "ok", "ok", "running")


def test_a_stopped_scheduler_is_failing(runtime: Runtime) -> None:
    status, body = health(runtime, lambda: False)
    assert (status, body["status"]) == (503, "failing")


def test_a_source_failing_again_and_again_makes_health_degraded(runtime: Runtime, session: Session) -> None:
    session.add(SourceState(source="x", consecutive_failures=runtime.settings.collector.failure_alert_after))
    session.commit()
    status, body = health(runtime, lambda: True)
    assert (status, body["status"]) == (200, "degraded")
    assert body["sources"]["x"]["consecutive_failures"] == 5


@pytest.fixture(autouse=True)
def jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh record of jobs, as in a newly started ``vigil run`` (for every test: a test run
    longer than a quarter of an hour would otherwise read as a scheduler that runs nothing)."""
    monkeypatch.setattr(service, "JOB_FAILURES", {})
    monkeypatch.setattr(service, "JOBS_REPORTED", set())
    monkeypatch.setattr(service, "JOB_STARTED", {})
    monkeypatch.setattr(service, "LAST_JOB_START", [time.monotonic()])


def test_a_job_failing_again_and_again_makes_health_degraded(runtime: Runtime, jobs: None) -> None:
    for _ in range(runtime.settings.service.failure_alert_after):
        service.recorded(runtime, "pipeline", lambda: 1 / 0)
    status, body = health(runtime, lambda: True)
    assert (status, body["status"], body["jobs"]) == (
        200,
        "degraded",
        {"pipeline": {"consecutive_failures": 3}},
    )
    service.recorded(runtime, "pipeline", lambda: "ok")
    assert health(runtime, lambda: True)[1]["status"] == "ok"


def test_a_job_running_far_longer_than_a_pass_should_makes_health_degraded(
    runtime: Runtime, jobs: None
) -> None:
    seen: list[dict[str, Any]] = []

    def stuck() -> str:
        seen.append(health(runtime, lambda: True)[1])
        service.JOB_STARTED["pipeline"] -= 15 * 60  # as if this run had begun a quarter of an hour ago
        seen.append(health(runtime, lambda: True)[1])
        return "0 classified"

    service.recorded(runtime, "pipeline", stuck)
    [running, stuck_for_long] = seen
    assert (running["status"], list(running["running"])) == ("ok", ["pipeline"])
    assert stuck_for_long["status"] == "degraded" and stuck_for_long["running"]["pipeline"] >= 15 * 60
    after = health(runtime, lambda: True)[1]
    assert (after["status"], after["running"]) == ("ok", {})


def test_no_job_beginning_for_many_passes_makes_health_degraded_until_one_does(
    runtime: Runtime, jobs: None
) -> None:
    """On SQLite another writer holding the lock for long stops the scheduler reading its jobs:
    nothing ran and nothing failed, and /healthz said ok."""
    assert health(runtime, lambda: True)[1]["status"] == "ok"
    service.LAST_JOB_START[0] -= 15 * 60  # as if no job had begun for a quarter of an hour
    idle = health(runtime, lambda: True)[1]
    assert (idle["status"], idle["scheduler"]) == ("degraded", "running") and idle["idle"] >= 15 * 60
    service.recorded(runtime, "pipeline", lambda: "0 classified")
    assert health(runtime, lambda: True)[1]["status"] == "ok"


def queue_email(
    session: Session, settings: Settings, key: str, age: timedelta, priority: int, error: str
) -> None:
    """An email queued ``age`` ago whose last attempt failed with ``error``."""
    email = load_config(settings).email
    enqueue(session, email, key=key, kind=key.split(":")[0], recipient_email="manager@a10001.example",
            subject="Subject", text="Text", html="<p>Text</p>", priority=priority,
            now=datetime.now(UTC) - age)  # fmt: skip
    session.execute(
        update(OutboxMessage).where(OutboxMessage.key == key).values(last_error=error, attempts=1)
    )
    session.commit()


def test_urgent_email_still_waiting_long_after_it_was_queued_makes_health_degraded(
    runtime: Runtime, session: Session
) -> None:
    queue_email(session, runtime.settings, "digest:1", timedelta(days=2), NORMAL, "connection refused")
    queue_email(session, runtime.settings, "alert:1", timedelta(minutes=5), URGENT, "connection refused")
    status, body = health(runtime, lambda: True)
    assert (status, body["status"], "email" in body) == (200, "ok", False)  # a digest waits its turn
    queue_email(
        session, runtime.settings, "alert:2", timedelta(minutes=20), URGENT, "535 5.7.8 login refused"
    )
    queue_email(session, runtime.settings, "operator:1", timedelta(minutes=16), URGENT, "connection refused")
    status, body = health(runtime, lambda: True)
    assert (status, body["status"]) == (200, "degraded")
    oldest = session.scalars(select(OutboxMessage.created_at).where(OutboxMessage.key == "alert:2")).one()
    session.commit()
    assert body["email"] == {
        "urgent_waiting": 3,
        "oldest": oldest.isoformat(timespec="seconds"),
        "last_error": "535 5.7.8 login refused",  # the oldest one's
    }


def test_health_names_no_tenants_address_from_a_mail_servers_reply(
    runtime: Runtime, session: Session
) -> None:
    refused = "450 4.1.2 <manager@a10001.example>: Recipient address rejected"
    queue_email(session, runtime.settings, "alert:1", timedelta(minutes=20), URGENT, refused)
    _, body = health(runtime, lambda: True)  # /healthz answers anyone who can reach it
    assert body["email"]["last_error"] == "450 4.1.2 <address> Recipient address rejected"


def test_healthz_and_metrics_answer_while_a_job_holds_the_write_lock(
    runtime: Runtime, session: Session, engine: Engine
) -> None:
    session.add(SourceState(source="x"))
    session.commit()
    with engine.begin() as job:  # on SQLite, BEGIN IMMEDIATE: the write lock, until the block ends
        job.execute(update(SourceState).values(consecutive_failures=99))
        status, body = health(runtime, lambda: True)
        families = list(metrics.DatabaseCollector(runtime).collect())
    assert (status, body["status"], body["sources"]["x"]["consecutive_failures"]) == (200, "ok", 0)
    assert [family.name for family in families] == [
        "vigil_outbox_messages",
        "vigil_emails_sent",
        "vigil_mentions_unclassified",
        "vigil_cases_open",
    ]


def test_a_port_in_use_stops_vigil_run_with_one_line_naming_the_settings(runtime: Runtime) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = Runtime(runtime.settings.with_overrides(service__port=port))
        with pytest.raises(VigilError) as error:
            HealthServer(busy, lambda: True)
    assert str(error.value) == (
        f"cannot serve /healthz on 127.0.0.1:{port} (settings service.listen_host, service.port):"
        " Address already in use"
    )
    assert "vigil_mentions_unclassified" not in generate_latest(metrics.REGISTRY).decode()  # none left


def events(session: Session) -> list[tuple[str, str, str]]:
    session.expire_all()
    rows = session.scalars(select(OperatorEvent).order_by(OperatorEvent.id)).all()
    session.commit()  # end the read: on SQLite it would hold off the job's write
    return [(event.kind, event.subject, event.message) for event in rows]


def test_the_operator_is_told_once_when_a_job_keeps_failing_and_once_when_it_works_again(
    runtime: Runtime, session: Session, jobs: None
) -> None:
    def fails() -> None:
        raise PipelineError("pipeline step(s) failed: classify [no trained model in var/models/vigil]")

    for _ in range(2):
        service.recorded(runtime, "pipeline", fails)
    assert events(session) == []  # one bad minute is not worth an email
    for _ in range(3):
        service.recorded(runtime, "pipeline", fails)
    assert events(session) == [
        (
            "job_failing",
            "Vigil's pipeline job is failing",
            "The pipeline job failed 3 times in a row, the last with: pipeline step(s) failed:"
            " classify [no trained model in var/models/vigil].",
        )
    ]
    service.recorded(runtime, "pipeline", lambda: "3 classified")
    service.recorded(runtime, "pipeline", lambda: "0 classified")
    assert events(session)[1:] == [
        (
            "job_recovered",
            "Vigil's pipeline job works again",
            "The pipeline job ran again: 3 classified.",
        )
    ]


def test_a_digest_job_with_nothing_due_says_nothing_of_its_health(
    runtime: Runtime, session: Session, jobs: None
) -> None:
    for _ in range(3):
        service.recorded(runtime, "digests", lambda: 1 / 0)
    service.recorded(runtime, "digests", lambda: None)  # its day is over: the digests were not sent
    assert [kind for kind, _, _ in events(session)] == ["job_failing"]
    assert health(runtime, lambda: True)[1]["status"] == "degraded"


def test_the_operator_is_not_sent_the_values_of_a_failed_database_statement(
    runtime: Runtime, session: Session, jobs: None
) -> None:
    def query() -> None:
        with runtime.transaction() as failing:
            failing.execute(text("SELECT :post FROM no_such_table"), {"post": "Dr Hassan lives on Elm Road"})

    for _ in range(3):
        service.recorded(runtime, "pipeline", query)
    [(_, _, message)] = events(session)
    assert "no_such_table" in message and "(details in the log)" in message
    assert "Elm Road" not in message


def test_a_job_that_cannot_tell_the_operator_tells_them_at_its_next_failure(
    settings: Settings, session: Session, jobs: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = Runtime(settings.with_overrides(service__failure_alert_after=1))
    real = ops.raise_operator_event
    outcomes = iter([OSError("database unreachable"), None])

    def record(session: Session, kind: str, subject: str, message: str) -> OperatorEvent:
        if (error := next(outcomes)) is not None:
            raise error
        return real(session, kind, subject, message)

    monkeypatch.setattr(ops, "raise_operator_event", record)
    try:
        service.recorded(runtime, "digests", lambda: 1 / 0)
        assert events(session) == []
        service.recorded(runtime, "digests", lambda: 1 / 0)
    finally:
        runtime.close()
    assert [kind for kind, _, _ in events(session)] == ["job_failing"]


def test_an_unreachable_database_is_failing_without_a_traceback(settings: Settings) -> None:
    runtime = Runtime(settings.with_overrides(database__url="postgresql+psycopg://nobody@127.0.0.1:1/none"))
    status, body = health(runtime, lambda: True)
    runtime.close()
    assert status == 503 and body["database"].startswith("unreachable")


def test_a_failing_step_does_not_hold_back_the_emails_already_queued(
    settings: Settings, session: Session, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = Runtime(
        settings.with_overrides(
            classifier__model_dir=str(tmp_path / "no-model"),  # classify fails: no model there
            email__backend="file",
            email__outbox_dir=str(tmp_path / "outbox"),
        )
    )
    try:
        email = load_config(runtime.settings).email
        enqueue(session, email, key="case:1", kind="case", recipient_email="team@example.org", subject="Case",
                text="A case", html="<p>A case</p>")  # fmt: skip
        session.commit()
        with pytest.raises(
            PipelineError, match=r"failed: classify \[no trained model in .*\] \(0 classified"
        ):
            run_pipeline(runtime)
        stopping = threading.Event()
        stopping.set()
        with pytest.raises(PipelineError, match="classify"):  # stopping after it does not hide it
            run_pipeline(runtime, stopping)
        assert "Traceback" not in caplog.text  # no model is a known problem: one line says so
        assert "pipeline step classify failed: no trained model in" in caplog.text
    finally:
        runtime.close()
    session.expire_all()
    assert session.scalar(select(OutboxMessage.status)) == OutboxStatus.SENT


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_vigil_run_serves_healthz_and_metrics(settings: Settings) -> None:
    port = free_port()
    runtime = Runtime(settings.with_overrides(service__port=port, scheduler__jitter_seconds=0))
    stop = threading.Event()
    thread = threading.Thread(target=scheduler.run, args=(runtime,), kwargs={"until": stop})
    thread.start()
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                status, body = get(f"{base}/healthz")
                break
            except OSError:
                assert time.monotonic() < deadline, "the health endpoint never answered"
                time.sleep(0.1)
        assert status == 200 and json.loads(body)["status"] == "ok"
        status, body = get(f"{base}/metrics")
        assert status == 200
        assert 'vigil_outbox_messages{status="pending"} 0.0' in body
        assert "vigil_mentions_unclassified 0.0" in body
        assert "vigil_model_latency_seconds_bucket" in body
        assert get(f"{base}/nope")[0] == 404
    finally:
        stop.set()
        thread.join(timeout=60)
        with runtime.engine.begin() as connection:
            connection.execute(text(f"DROP TABLE IF EXISTS {scheduler.JOBS_TABLE}"))
        runtime.close()
    assert not thread.is_alive()


def test_a_database_that_accepts_connections_and_never_answers_is_failing(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A frozen server, or one behind a network that drops packets, held every probe forever."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()  # the kernel completes the handshake; nothing ever reads or answers
    port = silent.getsockname()[1]
    runtime = Runtime(
        settings.with_overrides(database__url=f"postgresql+psycopg://nobody@127.0.0.1:{port}/none")
    )
    monkeypatch.setattr(service, "DATABASE_DEADLINE", 0.5)
    answers: list[tuple[int, dict[str, Any]]] = []
    probe = threading.Thread(target=lambda: answers.append(health(runtime, lambda: True)), daemon=True)
    probe.start()
    probe.join(30)
    silent.close()  # lets a probe still waiting end
    runtime.close()
    [(status, body)] = answers
    assert (status, body["status"], body["database"]) == (503, "failing", "unreachable: TimeoutError")
