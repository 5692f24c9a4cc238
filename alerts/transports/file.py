"""Files: each message written as an .eml file named by its Message-ID (the demo default).

Writing is atomic (a temporary file, then a rename) and a file already there is the message
already delivered, so this backend is exactly-once even across a crash.
"""

from __future__ import annotations

import os
import re
import tempfile

from alerts.transports import Email, Transport, TransportError


class FileTransport(Transport):
    name = "file"

    def send_one(self, message: Email) -> None:
        folder = self.config.outbox_dir
        name = re.sub(r"[^A-Za-z0-9.@_-]", "_", message.message_id.strip("<>")) + ".eml"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if (folder / name).exists():
                return
            handle, temporary = tempfile.mkstemp(dir=folder, prefix=".", suffix=".tmp")
            with os.fdopen(handle, "wb") as stream:
                stream.write(message.raw)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temporary, folder / name)
        except OSError as exc:
            raise TransportError(f"cannot write {folder / name}: {exc.strerror or exc}") from exc
