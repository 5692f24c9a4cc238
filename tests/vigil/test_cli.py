from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from vigil import migrate
from vigil.cli import app
from vigil.models.collector import SourceState
from vigil.paths import resource_dir

SAMPLE_FILES = [str(p) for p in sorted((resource_dir("config") / "sample" / "register").glob("*.csv"))]
runner = CliRunner()


def vigil(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_help_lists_every_command_with_its_help() -> None:
    code, output = vigil("--help")
    assert code == 0
    for command in ("status", "db", "register", "config"):
        assert re.search(rf"│ {command}\s+\S", output), command


@pytest.mark.usefixtures("env")
def test_status_shows_register_counts_after_an_import() -> None:
    assert vigil("register", "import", *SAMPLE_FILES)[0] == 0
    code, output = vigil("status")
    assert code == 0
    assert re.search(r"Practices\s+│ 20", output)
    assert re.search(r"Doctors\s+│ 96", output)


def test_status_never_shows_the_database_password(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VIGIL_DATABASE__URL", "postgresql+psycopg://vigil@127.0.0.1:1/nowhere")
    monkeypatch.setenv("VIGIL_DATABASE__PASSWORD", "hunter2")
    code, output = vigil("config", "show")
    assert code == 0 and "hunter2" not in output and "********" in output
    code, output = vigil("status")
    assert code == 1 and "hunter2" not in output
    assert "error: database error" in output


def test_an_import_error_is_a_clear_message_and_a_non_zero_exit(env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "p.csv"
    bad.write_text("ods_code,name,town,postcode,handles,website\nA1,S,,,,\n")
    code, output = vigil("register", "import", str(bad))
    assert code == 1
    assert "error: 1 error(s); nothing was imported" in output
    assert f"{bad}:2: ods_code" in output
    assert "Traceback" not in output


@pytest.mark.parametrize(
    ("practices", "doctors", "error"),
    [
        ("A83008,Surgery,,,,\n", "123,Dr A,,,A83008,,\n", "d.csv:2: gmc_number: '123' is not a GMC number"),
        ("A8300,Surgery,,,,\n", "1234567,Dr A,,,,,\n", "p.csv:2: ods_code: 'A8300' is not an ODS code"),
    ],
    ids=["gmc_number", "ods_code"],
)
@pytest.mark.usefixtures("env")
def test_a_bad_row_imported_with_recipients_is_listed_not_a_traceback(
    tmp_path: Path, practices: str, doctors: str, error: str
) -> None:
    files = {
        "p.csv": "ods_code,name,town,postcode,handles,website\n" + practices,
        "d.csv": "gmc_number,full_name,aliases,handles,practice_ods_code,specialty,town\n" + doctors,
        "r.csv": "email,name,scope\norg@mdo.example,Org,org\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    code, output = vigil("register", "import", *(str(tmp_path / name) for name in files))
    assert code == 1
    assert "error: 1 error(s); nothing was imported" in output
    assert f"{tmp_path}/{error}" in output
    status = vigil("status")[1]
    assert re.search(r"Practices\s+│ 0", status) and re.search(r"Recipients\s+│ 0", status)


def test_a_bad_setting_stops_any_command_with_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "vigil", "status"],
        capture_output=True,
        text=True,
        env={"VIGIL_LOG__LEVEL": "LOUD", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: setting log.level (VIGIL_LOG__LEVEL): expected one of DEBUG, INFO, WARNING, ERROR, got 'LOUD'"
    ]


@pytest.mark.usefixtures("env")
def test_register_export_writes_the_three_files(tmp_path: Path) -> None:
    vigil("register", "import", *SAMPLE_FILES)
    code, _ = vigil("register", "export", str(tmp_path / "out"))
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "doctors.csv",
        "practices.csv",
        "recipients.csv",
    ]


@pytest.mark.usefixtures("env")
def test_register_export_to_a_file_says_it_needs_a_folder(tmp_path: Path) -> None:
    existing = tmp_path / "register.csv"
    existing.write_text("keep me", encoding="utf-8")
    code, output = vigil("register", "export", str(existing))
    assert code == 1 and "is a file: give a folder to write the three CSV files in" in output
    assert existing.read_text(encoding="utf-8") == "keep me"


def test_db_upgrade_creates_the_schema_from_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VIGIL_DATABASE__URL", f"sqlite:///{tmp_path}/sub/dir/vigil.db")
    code, output = vigil("db", "upgrade")
    assert code == 0, output
    assert (tmp_path / "sub" / "dir" / "vigil.db").exists()
    code, output = vigil("status")
    assert "(up to date)" in output


def test_status_exits_non_zero_while_the_schema_is_missing_or_out_of_date(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "vigil.db"
    monkeypatch.setenv("VIGIL_DATABASE__URL", f"sqlite:///{path}")
    code, output = vigil("status")
    assert (code, " ".join(output.split())) == (
        1,
        f"error: no database at {path} (setting database.url): check the path, or run `vigil db upgrade`"
        " to create it",
    )
    assert not path.exists()  # a typo in the path does not leave an empty database behind
    head = migrate.head_revision()
    assert head is not None
    previous = str(migrate.script_directory().get_revision(head).down_revision)
    assert vigil("db", "upgrade", previous)[0] == 0
    code, output = vigil("status")
    assert code == 1 and f"{previous}, latest is {head}: run `vigil db upgrade`" in output
    assert vigil("db", "upgrade")[0] == 0
    code, output = vigil("status")
    assert code == 0 and f"{head} (up to date)" in output


ESCAPES = "\x1b[2J\x1b]0;PWNED\x07\u202e\x9b31m"  # clear screen, set the title, bidi override, 8-bit CSI


def test_status_prints_a_remote_error_without_its_terminal_escapes(
    env: dict[str, str], session: Session
) -> None:
    session.add(SourceState(source="mastodon", consecutive_failures=4, last_error=f"refused: {ESCAPES}boom"))
    session.commit()
    code, output = vigil("status")
    assert code == 0, output
    assert "PWNED31mboom" in output.replace("\n", "").replace("│", "").replace(" ", "")  # the words stay
    assert not any(character in output for character in "\x1b\x07\u202e\x9b")
