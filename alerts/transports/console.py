"""Console: each message's headers and plain-text part printed to standard output (for trying Vigil)."""

from __future__ import annotations

import sys
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import cast

from alerts.transports import Email, Transport

HEADERS = ("From", "To", "Subject", "Date", "Message-ID")


class ConsoleTransport(Transport):
    name = "console"

    def send_one(self, message: Email) -> None:
        parsed = cast(EmailMessage, message_from_bytes(message.raw, policy=policy.default))
        lines = [f"{name}: {parsed[name]}" for name in HEADERS]
        body = parsed.get_body(("plain",))
        text = body.get_content() if body is not None else ""
        sys.stdout.write("\n".join([*lines, "", text.rstrip(), "-" * 72, ""]))
        sys.stdout.flush()
