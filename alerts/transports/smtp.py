"""SMTP: STARTTLS or SSL, optional login, one connection for a whole batch.

Replies are sorted the way mail servers mean them: 5xx is permanent for that message (a refused
recipient, rejected content), 4xx and a dropped connection are transient. Failing to connect or
log in is never blamed on a message: the whole batch waits and is retried.
"""

from __future__ import annotations

import logging
import smtplib
import socket
import ssl

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_fixed

from alerts.transports import Email, Transport, TransportError

log = logging.getLogger(__name__)


def _reply(text: bytes | str) -> str:
    return (text.decode("utf-8", "replace") if isinstance(text, bytes) else text).strip()


class SmtpTransport(Transport):
    name = "smtp"
    _smtp: smtplib.SMTP | None = None

    def is_open(self) -> bool:
        return self._smtp is not None

    def open(self) -> None:
        config = self.config
        where = f"{config.smtp_host}:{config.smtp_port}"
        try:
            # A refused connection is retried once, briefly: a relay restarting, not an outage.
            for attempt in Retrying(
                stop=stop_after_attempt(2),
                wait=wait_fixed(0.5),
                retry=retry_if_exception_type(OSError),
                reraise=True,
            ):
                with attempt:
                    self._smtp = self._connect()
        except smtplib.SMTPAuthenticationError as exc:
            raise TransportError(
                f"SMTP login to {where} refused: {exc.smtp_code} {_reply(exc.smtp_error)}"
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise TransportError(f"cannot connect to SMTP server {where}: {exc}") from exc

    def _connect(self) -> smtplib.SMTP:
        config = self.config
        context = ssl.create_default_context(cafile=config.smtp_ca_file or None)
        smtp: smtplib.SMTP
        if config.smtp_security == "ssl":
            smtp = smtplib.SMTP_SSL(
                config.smtp_host,
                config.smtp_port,
                local_hostname=socket.gethostname(),
                timeout=config.smtp_timeout,
                context=context,
            )
        else:
            smtp = smtplib.SMTP(
                config.smtp_host,
                config.smtp_port,
                local_hostname=socket.gethostname(),
                timeout=config.smtp_timeout,
            )
        try:
            smtp.ehlo()
            if config.smtp_security == "starttls":
                smtp.starttls(context=context)
                smtp.ehlo()
            if config.smtp_username:
                smtp.login(config.smtp_username, config.smtp_password.get())
        except BaseException:
            smtp.close()
            raise
        return smtp

    def send_one(self, message: Email) -> None:
        assert self._smtp is not None
        try:
            self._smtp.sendmail(message.sender, [message.recipient], message.raw)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = exc.recipients.get(message.recipient, (0, b""))
            raise TransportError(f"recipient refused: {code} {_reply(reply)}", permanent=code >= 500) from exc
        except smtplib.SMTPResponseException as exc:
            if exc.smtp_code == 421:  # the server is closing the connection
                self._drop()
            raise TransportError(
                f"{exc.smtp_code} {_reply(exc.smtp_error)}", permanent=500 <= exc.smtp_code < 600
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            self._drop()
            raise TransportError(f"connection lost: {exc}") from exc

    def _drop(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
            self._smtp = None

    def close(self) -> None:
        if self._smtp is None:
            return
        try:
            self._smtp.quit()
        except (smtplib.SMTPException, OSError):
            log.debug("SMTP QUIT failed; closing the connection", exc_info=True)
        finally:
            self._drop()
