"""Exactly-once delivery under concurrency and crashes, against a real SMTP server.

The crash tests kill a real ``vigil alerts send`` process with SIGKILL in the middle of a batch,
at the two moments that matter: before the server has the message, and after it has accepted it
but before the sender could record that (the window SMTP cannot close; see alerts/outbox.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from alerts.config import AlertsConfig, load_config
from alerts.outbox import DeliveryReport, deliver
from tests.alerts.conftest import Received, SmtpServer, queue, smtp_overrides
from vigil.models import OutboxMessage, OutboxStatus
from vigil.settings import Settings

LEASE = 4  # seconds; the smallest the settings allow with a 1 s SMTP timeout


def put(session: Session, config: AlertsConfig, count: int) -> list[str]:
    return queue(session, config, [f"r{number}@example.org" for number in range(count)])


def test_two_senders_running_at_once_deliver_every_message_once(
    session: Session, engine: Engine, alert_settings: Settings, smtp_server: SmtpServer
) -> None:
    config = load_config(alert_settings.with_overrides(**smtp_overrides(smtp_server, email__batch_size=5)))
    recipients = put(session, config, 60)
    reports: list[DeliveryReport] = []

    def sender() -> None:
        reports.append(deliver(engine, config.email))

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(report.sent for report in reports) == 60
    assert sorted(r.rcpt_tos[0] for r in smtp_server.received) == sorted(recipients)
    assert len(set(smtp_server.recorder.message_ids())) == 60


def run_sender(database_url: str, server: SmtpServer, cwd: Path) -> subprocess.Popen[str]:
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "VIGIL_DATABASE__URL": database_url,
        "VIGIL_EMAIL__BACKEND": "smtp",
        "VIGIL_EMAIL__SMTP_HOST": "127.0.0.1",
        "VIGIL_EMAIL__SMTP_PORT": str(server.port),
        "VIGIL_EMAIL__SMTP_SECURITY": "none",
        "VIGIL_EMAIL__SMTP_TIMEOUT_SECONDS": "1",
        "VIGIL_EMAIL__LEASE_SECONDS": str(LEASE),
        "VIGIL_EMAIL__BATCH_SIZE": "10",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "vigil", "alerts", "send"],
        cwd=cwd,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> str:
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output
    return output


@pytest.mark.parametrize("moment", ["before the server accepts", "after the server accepts"])
def test_a_sender_killed_mid_batch_loses_nothing_and_repeats_at_most_the_message_in_flight(
    session: Session,
    alert_settings: Settings,
    smtp_server: SmtpServer,
    database_url: str,
    tmp_path: Path,
    moment: str,
) -> None:
    config = load_config(alert_settings.with_overrides(**smtp_overrides(smtp_server)))
    recipients = put(session, config, 25)
    victim = "r11@example.org"  # the second message of the second batch of ten
    sender: dict[str, subprocess.Popen[str]] = {}

    def kill(address: str) -> None:
        if address == victim and "killed" not in sender:
            sender["killed"] = sender["first"]
            os.kill(sender["first"].pid, signal.SIGKILL)

    if moment == "before the server accepts":
        smtp_server.recorder.on_rcpt = kill
    else:
        smtp_server.recorder.on_data = lambda received: kill(received.rcpt_tos[0])

    sender["first"] = run_sender(database_url, smtp_server, tmp_path)
    sender["first"].communicate(timeout=120)
    assert sender["first"].returncode == -signal.SIGKILL
    session.expire_all()
    states = Counter(message.status for message in session.scalars(select(OutboxMessage)))
    session.commit()
    assert states[OutboxStatus.SENT] == 11 and states[OutboxStatus.SENDING] == 1

    finish(run_sender(database_url, smtp_server, tmp_path))  # at once: the dead sender's claims still hold
    time.sleep(LEASE + 0.5)
    output = finish(run_sender(database_url, smtp_server, tmp_path))  # after the lease: the rest
    assert "1 possibly sent twice" in output

    copies = Counter(received.rcpt_tos[0] for received in smtp_server.received)
    assert set(copies) == set(recipients), "a message was lost"
    if moment == "before the server accepts":
        assert set(copies.values()) == {1}
    else:
        assert {recipient for recipient, count in copies.items() if count > 1} == {victim}
        assert copies[victim] == 2
        twice: list[Received] = [r for r in smtp_server.received if r.rcpt_tos[0] == victim]
        assert twice[0].message_id == twice[1].message_id and twice[0].data == twice[1].data
    session.expire_all()
    assert {message.status for message in session.scalars(select(OutboxMessage))} == {OutboxStatus.SENT}
