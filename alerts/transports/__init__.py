"""Ways email leaves Vigil: one module per backend, each a small ``Transport`` subclass.

The contract, after healthchecks' transports: ``Transport.send(messages)`` sends a batch over one
connection and yields each message's outcome as soon as it is known (``None`` for accepted, or a
``TransportError(message, permanent)``), so the caller can record it before the next is sent. It
takes each message from ``messages`` only once it is ready to send it. If it cannot send at all
(the server is down, the login is refused), ``send`` raises ``TransportError`` and the messages it
has not taken are untouched.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import ClassVar

from alerts.config import EmailConfig


@dataclass(frozen=True)
class Email:
    """A stored message as a transport sees it: the envelope and the exact bytes to send."""

    id: int
    message_id: str
    sender: str
    recipient: str
    raw: bytes


class TransportError(Exception):
    """A message was not sent. ``permanent`` means retrying cannot help (recipient refused, 5xx)."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent


Outcome = tuple[Email, TransportError | None]


class Transport(ABC):
    name: ClassVar[str]

    def __init__(self, config: EmailConfig) -> None:
        self.config = config

    def send(self, messages: Iterable[Email]) -> Iterator[Outcome]:
        """Send each message over one connection, yielding its outcome before taking the next."""
        pending = iter(messages)
        try:
            while True:
                if not self.is_open():
                    self.open()
                message = next(pending, None)
                if message is None:
                    return
                try:
                    self.send_one(message)
                except TransportError as error:
                    yield message, error
                else:
                    yield message, None
        finally:
            self.close()

    def is_open(self) -> bool:
        return True

    def open(self) -> None:
        """Connect; raise TransportError if that is impossible now."""
        return None

    @abstractmethod
    def send_one(self, message: Email) -> None:
        """Hand one message over; raise TransportError if it was not accepted."""

    def close(self) -> None:
        """Disconnect, quietly."""
        return None


def make_transport(config: EmailConfig) -> Transport:
    """The transport named by ``email.backend``."""
    if config.backend == "smtp":
        from alerts.transports.smtp import SmtpTransport

        return SmtpTransport(config)
    if config.backend == "console":
        from alerts.transports.console import ConsoleTransport

        return ConsoleTransport(config)
    from alerts.transports.file import FileTransport

    return FileTransport(config)
