"""Files: each message written as an .eml file named by its Message-ID (the demo default).

Writing is atomic (a temporary file, then a rename) and a file already there is the message
already delivered, so this backend is exactly-once even across a crash.

The files quote posts and hold recipients' addresses, as the outbox rows do, so the daily
retention job deletes them after ``retention.outbox_days`` too (``delete_written_before``).
"""

from __future__ import annotations

import os
import re
import tempfile
from datetime import datetime
from pathlib import Path

from alerts.transports import Email, Transport, TransportError

TEMPORARY_PREFIX, TEMPORARY_SUFFIX = ".", ".tmp"
# What this backend writes, and nothing else in the folder: a Message-ID made safe as a file name
# (Vigil's always hold an "@"), and the temporary file mkstemp names while one is written (a
# crash can leave one behind).
WRITTEN = re.compile(r"[A-Za-z0-9.@_-]*@[A-Za-z0-9.@_-]*\.eml|\.[a-z0-9_]{8}\.tmp")


def file_name(message_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9.@_-]", "_", message_id.strip("<>")) + ".eml"


class FileTransport(Transport):
    name = "file"

    def send_one(self, message: Email) -> None:
        folder = self.config.outbox_dir
        name = file_name(message.message_id)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if (folder / name).exists():
                return
            handle, temporary = tempfile.mkstemp(dir=folder, prefix=TEMPORARY_PREFIX, suffix=TEMPORARY_SUFFIX)
            with os.fdopen(handle, "wb") as stream:
                stream.write(message.raw)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temporary, folder / name)
        except OSError as exc:
            raise TransportError(f"cannot write {folder / name}: {exc.strerror or exc}") from exc


def delete_written_before(folder: Path, cutoff: datetime) -> int:
    """Delete the files this backend wrote in ``folder`` last modified before ``cutoff``; return
    how many went.

    Only regular files named as this backend names them, directly in the folder: anything else
    someone keeps there stays, a symbolic link is never followed (nor deleted), and a
    subfolder is never entered. The folder is opened once and every file is looked at and
    unlinked relative to it, so a folder renamed or replaced meanwhile cannot redirect the
    deletions. A folder that does not exist (another backend, nothing sent yet) holds nothing.
    """
    try:
        handle = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        return 0
    try:
        return sum(_delete_if_old(handle, entry, cutoff.timestamp()) for entry in os.scandir(handle))
    finally:
        os.close(handle)


def _delete_if_old(folder: int, entry: os.DirEntry[str], cutoff: float) -> bool:
    if not WRITTEN.fullmatch(entry.name) or not entry.is_file(follow_symlinks=False):
        return False
    try:
        if entry.stat(follow_symlinks=False).st_mtime >= cutoff:
            return False
        os.unlink(entry.name, dir_fd=folder)
    except FileNotFoundError:  # deleted meanwhile (another run, a person)
        return False
    return True
