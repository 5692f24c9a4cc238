from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from alerts.config import AlertsConfig
from alerts.transports import Email, TransportError
from alerts.transports.file import FileTransport


def email(number: int) -> Email:
    return Email(
        number,
        f"<{number}.alert@vigil.example>",
        "alerts@vigil.example",
        "a@b.example",
        b"Subject: hi\r\n\r\nhi\r\n",
    )


def test_each_message_is_written_once_as_an_eml_file_named_by_its_message_id(
    config: AlertsConfig, tmp_path: Path
) -> None:
    transport = FileTransport(replace(config.email, outbox_dir=tmp_path / "out"))
    outcomes = list(transport.send([email(1), email(2), email(1)]))
    assert [error for _, error in outcomes] == [None, None, None]
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == [
        "1.alert@vigil.example.eml",
        "2.alert@vigil.example.eml",
    ]
    assert (tmp_path / "out" / "1.alert@vigil.example.eml").read_bytes() == email(1).raw


def test_a_folder_that_cannot_be_written_is_a_transient_failure(config: AlertsConfig, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    transport = FileTransport(replace(config.email, outbox_dir=blocker))
    [(_, error)] = list(transport.send([email(1)]))
    assert isinstance(error, TransportError) and not error.permanent
    assert str(blocker) in error.message


@pytest.mark.parametrize("message_id", ["<../../etc/passwd@x>", "<a/b\\c@x>"])
def test_a_message_id_cannot_escape_the_folder(config: AlertsConfig, tmp_path: Path, message_id: str) -> None:
    transport = FileTransport(replace(config.email, outbox_dir=tmp_path / "out"))
    list(transport.send([Email(1, message_id, "s@x.example", "r@x.example", b"x")]))
    [written] = list((tmp_path / "out").iterdir())
    assert written.parent == tmp_path / "out" and "/" not in written.name
