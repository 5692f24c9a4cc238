from __future__ import annotations

import os
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from alerts.config import AlertsConfig
from alerts.transports import Email, TransportError
from alerts.transports.file import FileTransport, delete_written_before
from tests.alerts.conftest import NOW


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


def written_days_ago(path: Path, days: int, content: str = "quotes a post") -> Path:
    """A file last modified ``days`` before NOW."""
    path.write_text(content)
    stamp = (NOW - timedelta(days=days)).timestamp()
    os.utime(path, (stamp, stamp), follow_symlinks=False)
    return path


def test_files_written_before_the_cutoff_go_and_newer_ones_stay(config: AlertsConfig, tmp_path: Path) -> None:
    folder = tmp_path / "out"
    list(FileTransport(replace(config.email, outbox_dir=folder)).send([email(1), email(2)]))
    written_days_ago(folder / "1.alert@vigil.example.eml", 91)
    written_days_ago(folder / "2.alert@vigil.example.eml", 89)
    written_days_ago(folder / ".ab_c1234.tmp", 91)  # left by a crash while writing

    assert delete_written_before(folder, NOW - timedelta(days=90)) == 2
    assert sorted(path.name for path in folder.iterdir()) == ["2.alert@vigil.example.eml"]
    assert delete_written_before(folder, NOW - timedelta(days=90)) == 0


def test_only_files_named_as_the_backend_names_them_go(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    others = ["notes.eml", "README", "1.alert@vigil.example.eml.bak", ".hidden.tmp", "x@y.EML"]
    for name in others:
        written_days_ago(folder / name, 400)
    (folder / "sub@folder.eml").mkdir()
    written_days_ago(folder / "sub@folder.eml" / "3.alert@vigil.example.eml", 400)

    assert delete_written_before(folder, NOW) == 0
    assert sorted(path.name for path in folder.iterdir()) == sorted([*others, "sub@folder.eml"])
    assert (folder / "sub@folder.eml" / "3.alert@vigil.example.eml").exists()  # never entered


def test_a_symbolic_link_is_neither_followed_nor_deleted(tmp_path: Path) -> None:
    folder, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    folder.mkdir()
    elsewhere.mkdir()
    target = written_days_ago(elsewhere / "4.alert@vigil.example.eml", 400)
    link = folder / "4.alert@vigil.example.eml"
    link.symlink_to(target)
    os.utime(link, (0, 0), follow_symlinks=False)  # the link itself is old too

    assert delete_written_before(folder, NOW) == 0
    assert link.is_symlink() and target.read_text() == "quotes a post"


def test_a_folder_that_does_not_exist_holds_nothing_to_delete(tmp_path: Path) -> None:
    assert delete_written_before(tmp_path / "never-written", NOW) == 0
