from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from alerts.config import load_config
from alerts.outbox import enqueue
from vigil import scheduler, service
from vigil.models import OutboxMessage, OutboxStatus, SourceState
from vigil.runtime import Runtime
from vigil.service import PipelineError, health, run_pipeline
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


def test_a_job_failing_again_and_again_makes_health_degraded(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "JOB_FAILURES", {})
    for _ in range(runtime.settings.collector.failure_alert_after):
        service._recorded("pipeline", lambda: 1 / 0)
    status, body = health(runtime, lambda: True)
    assert (status, body["status"], body["jobs"]) == (
        200,
        "degraded",
        {"pipeline": {"consecutive_failures": 5}},
    )
    service._recorded("pipeline", lambda: "ok")
    assert health(runtime, lambda: True)[1]["status"] == "ok"


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
        with pytest.raises(PipelineError, match=r"failed: classify \(0 classified"):
            run_pipeline(runtime)
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
