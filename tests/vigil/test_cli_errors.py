"""Bad input on the command line is one ``error:`` line and a non-zero exit, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from vigil.cli import app
from vigil.paths import resource_dir

runner = CliRunner()


@pytest.mark.usefixtures("env")
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["db", "upgrade", "nosuch"], "error: migrations: Can't locate revision identified by 'nosuch'"),
        (["db", "downgrade", "nosuch"], "error: migrations: Can't locate revision identified by 'nosuch'"),
        (["register", "import", "{tmp}"], "error: {tmp}: Is a directory"),
        (["collect", "import", "{tmp}"], "error: {tmp}: Is a directory"),
        (
            ["mentions", "export", "-o", "{tmp}/missing/x.csv"],
            "error: {tmp}/missing/x.csv: No such file or directory",
        ),
    ],
)
def test_a_bad_path_or_revision_is_one_clear_line(tmp_path: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, [arg.format(tmp=tmp_path) for arg in args])
    assert result.exit_code == 1
    assert message.format(tmp=tmp_path) in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_a_database_without_its_schema_says_to_upgrade_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("VIGIL_DATABASE__URL", f"sqlite:///{tmp_path / 'new.db'}")
    result = runner.invoke(
        app, ["register", "import", str(resource_dir("config") / "sample" / "register" / "practices.csv")]
    )
    assert result.exit_code == 1
    assert "no such table: practices (the database has no schema yet: run `vigil db upgrade`)" in " ".join(
        result.output.split()
    )
