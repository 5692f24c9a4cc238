from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import ssl
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from alerts.chart import trend_chart
from alerts.config import AlertsConfig, load_config
from alerts.outbox import InlineImage, content_id, deliver, enqueue
from tests.alerts.conftest import NOW, SmtpServer, queue, smtp_overrides
from vigil.models import OutboxMessage, OutboxStatus
from vigil.settings import Settings

LATER = NOW + dt.timedelta(hours=1)


def put(session: Session, config: AlertsConfig, *recipients: str) -> None:
    queue(session, config, list(recipients))


def outbox(session: Session) -> dict[str, tuple[OutboxStatus, str]]:
    session.expire_all()
    rows = {m.recipient_email: (m.status, m.last_error) for m in session.scalars(select(OutboxMessage))}
    session.commit()
    return rows


def test_the_server_receives_one_multipart_message_with_its_inline_image(
    session: Session, engine: Engine, smtp_settings: Settings, smtp_server: SmtpServer
) -> None:
    config = load_config(smtp_settings)
    png = trend_chart(("2 Nov", "9 Nov"), (("threat", (1, 0)), ("neutral", (2, 3))))
    cid = content_id(config.email, "trend")
    enqueue(
        session,
        config.email,
        key="digest:r1:2026-W46",
        kind="digest",
        recipient_email="manager@a10001.example",
        recipient_name="Practice manager",
        subject="Weekly digest",
        text="Six posts this week.",
        html=f'<p>Six posts this week.</p><img src="cid:{cid}" alt="Posts per week">',
        images=[InlineImage(cid=cid, data=png, filename="trend.png")],
        now=NOW,
    )
    session.commit()
    assert deliver(engine, config.email, now=NOW).sent == 1
    [received] = smtp_server.received
    assert received.mail_from == "alerts@vigil.example"
    assert received.rcpt_tos == ["manager@a10001.example"]
    message = received.message
    assert message["To"] == "Practice manager <manager@a10001.example>"
    assert message["Message-ID"] == session.scalars(select(OutboxMessage.message_id)).one()
    assert [part.get_content_type() for part in message.walk()] == [
        "multipart/alternative",
        "text/plain",
        "multipart/related",
        "text/html",
        "image/png",
    ]
    assert message.get_body(("plain",)).get_content().strip() == "Six posts this week."  # type: ignore[union-attr]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    image = next(part for part in message.walk() if part.get_content_type() == "image/png")
    assert f'src="cid:{image["Content-ID"].strip("<>")}"' in html
    assert image.get_content() == png and png.startswith(b"\x89PNG\r\n\x1a\n")


def test_a_batch_shares_one_connection(
    session: Session, engine: Engine, smtp_settings: Settings, smtp_server: SmtpServer
) -> None:
    config = load_config(smtp_settings)
    put(session, config, *(f"person{n}@example.org" for n in range(6)))
    assert deliver(engine, config.email, now=NOW).sent == 6
    assert len({received.connection for received in smtp_server.received}) == 1


def test_when_the_server_is_down_then_up_everything_is_delivered_once(
    session: Session, engine: Engine, alert_settings: Settings
) -> None:
    server = SmtpServer()
    config = load_config(alert_settings.with_overrides(**smtp_overrides(server)))
    put(session, config, "a@example.org", "b@example.org", "c@example.org")
    down = deliver(engine, config.email, now=NOW)
    assert (down.sent, down.retrying) == (0, 3)
    assert all(status == OutboxStatus.PENDING for status, _ in outbox(session).values())
    server.start()
    try:
        assert deliver(engine, config.email, now=NOW + dt.timedelta(minutes=1)).sent == 0  # still backing off
        assert deliver(engine, config.email, now=LATER).sent == 3
        assert deliver(engine, config.email, now=LATER + dt.timedelta(hours=1)).sent == 0
    finally:
        server.stop()
    assert sorted(r.rcpt_tos[0] for r in server.received) == [
        "a@example.org",
        "b@example.org",
        "c@example.org",
    ]
    assert len(set(server.recorder.message_ids())) == 3


def test_a_4xx_reply_is_retried_later_and_then_delivered_once(
    session: Session, engine: Engine, smtp_settings: Settings, smtp_server: SmtpServer
) -> None:
    config = load_config(smtp_settings)
    smtp_server.recorder.data_replies = ["451 4.3.0 Try again later"]
    put(session, config, "a@example.org", "b@example.org")
    first = deliver(engine, config.email, now=NOW)
    assert (first.sent, first.retrying) == (1, 1)
    assert outbox(session)["a@example.org"] == (OutboxStatus.PENDING, "451 4.3.0 Try again later")
    assert deliver(engine, config.email, now=LATER).sent == 1
    assert sorted(r.rcpt_tos[0] for r in smtp_server.received) == ["a@example.org", "b@example.org"]


def test_a_5xx_for_one_recipient_fails_that_message_only(
    session: Session, engine: Engine, smtp_settings: Settings, smtp_server: SmtpServer
) -> None:
    config = load_config(smtp_settings)
    smtp_server.recorder.refuse["gone@example.org"] = "550 5.1.1 No such user"
    put(session, config, "a@example.org", "gone@example.org", "c@example.org")
    report = deliver(engine, config.email, now=NOW)
    assert (report.sent, report.failed) == (2, 1)
    assert outbox(session)["gone@example.org"] == (
        OutboxStatus.FAILED,
        "recipient refused: 550 5.1.1 No such user",
    )
    assert deliver(engine, config.email, now=LATER).sent == 0
    assert sorted(r.rcpt_tos[0] for r in smtp_server.received) == ["a@example.org", "c@example.org"]


def test_a_server_closing_the_connection_mid_batch_costs_one_retry(
    session: Session, engine: Engine, smtp_settings: Settings, smtp_server: SmtpServer
) -> None:
    config = load_config(smtp_settings)
    smtp_server.recorder.data_replies = ["421 4.3.2 Service shutting down"]
    put(session, config, "a@example.org", "b@example.org", "c@example.org")
    report = deliver(engine, config.email, now=NOW)
    assert (report.sent, report.retrying) == (2, 1)
    deliver(engine, config.email, now=LATER)
    assert sorted(r.rcpt_tos[0] for r in smtp_server.received) == [
        "a@example.org",
        "b@example.org",
        "c@example.org",
    ]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, and its key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return folder / "cert.pem", folder / "key.pem"


def server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    return context


def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    # handled=False: aiosmtpd itself replies 535 to a wrong password
    return AuthResult(success=(data.login, data.password) == (b"vigil", b"s3cret pass"), handled=False)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_it_sends_over_tls_with_a_login(
    session: Session,
    engine: Engine,
    alert_settings: Settings,
    certificate: tuple[Path, Path],
    security: str,
) -> None:
    options: dict[str, Any] = {"authenticator": authenticator, "auth_required": True}
    if security == "ssl":
        # aiosmtpd does not count implicit TLS as TLS for AUTH; the connection is encrypted all the same
        options.update(ssl_context=server_context(certificate), auth_require_tls=False)
    else:
        options.update(tls_context=server_context(certificate), require_starttls=True)
    server = SmtpServer(**options)
    server.start()
    try:
        settings = alert_settings.with_overrides(
            **smtp_overrides(
                server,
                email__smtp_security=security,
                email__smtp_username="vigil",
                email__smtp_password="s3cret pass",
                email__smtp_ca_file=str(certificate[0]),
            )
        )
        config = load_config(settings)
        put(session, config, "a@example.org", "b@example.org")
        assert deliver(engine, config.email, now=NOW).sent == 2
    finally:
        server.stop()
    assert len(server.received) == 2


def test_a_refused_login_keeps_messages_waiting_and_never_logs_the_password(
    session: Session,
    engine: Engine,
    alert_settings: Settings,
    certificate: tuple[Path, Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = SmtpServer(
        authenticator=authenticator,
        auth_required=True,
        tls_context=server_context(certificate),
        require_starttls=True,
    )
    server.start()
    try:
        settings = alert_settings.with_overrides(
            **smtp_overrides(
                server,
                email__smtp_security="starttls",
                email__smtp_username="vigil",
                email__smtp_password="wrong horse battery",
                email__smtp_ca_file=str(certificate[0]),
            )
        )
        config = load_config(settings)
        put(session, config, "a@example.org")
        with caplog.at_level(logging.DEBUG):
            report = deliver(engine, config.email, now=NOW)
    finally:
        server.stop()
    assert (report.sent, report.retrying, report.failed) == (0, 1, 0)
    status, error = outbox(session)["a@example.org"]
    assert status == OutboxStatus.PENDING and "login" in error and "535" in error
    assert "wrong horse" not in caplog.text and "wrong horse" not in error


def test_an_untrusted_certificate_is_refused(
    session: Session, engine: Engine, alert_settings: Settings, certificate: tuple[Path, Path]
) -> None:
    server = SmtpServer(tls_context=server_context(certificate), require_starttls=True)
    server.start()
    try:
        config = load_config(
            alert_settings.with_overrides(**smtp_overrides(server, email__smtp_security="starttls"))
        )
        put(session, config, "a@example.org")
        assert deliver(engine, config.email, now=NOW).retrying == 1
    finally:
        server.stop()
    assert server.received == []
    assert "CERTIFICATE_VERIFY_FAILED" in outbox(session)["a@example.org"][1]
