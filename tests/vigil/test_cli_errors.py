"""Bad input on the command line is one ``error:`` line and a non-zero exit, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vigil.cli import app
from vigil.paths import resource_dir

runner = CliRunner()
SAMPLE = resource_dir("config") / "sample" / "register"


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


@pytest.mark.usefixtures("env")
@pytest.mark.parametrize("number", ["0", "99999999999999999999"])
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["cases", "show", "{id}"], "error: there is no case {id}"),
        (["cases", "update", "{id}", "--status", "closed"], "error: there is no case {id}"),
        (["mentions", "label", "{id}", "--labels", "none"], "error: no stored mention has the id(s) {id};"),
        (["alerts", "retry", "{id}"], "error: no permanently failed message #{id}"),
    ],
)
def test_an_id_that_no_record_has_says_so(args: list[str], message: str, number: str) -> None:
    """A number past 64 bits ended in a traceback: SQLite cannot be asked for it."""
    result = runner.invoke(app, [arg.format(id=number) for arg in args])
    assert result.exit_code == 1
    assert message.format(id=number) in " ".join(result.output.split())
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


def test_a_database_error_on_an_old_schema_says_to_upgrade_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """It said only "table mention_entities has no column named linked_at"."""
    from vigil import migrate
    from vigil.runtime import Runtime

    monkeypatch.setenv("VIGIL_DATABASE__URL", f"sqlite:///{tmp_path / 'old.db'}")
    rt = Runtime.load(None)
    migrate.upgrade(rt.engine, "0009")  # before 0010 added mention_entities.linked_at
    rt.close()
    assert runner.invoke(app, ["register", "import", *map(str, sorted(SAMPLE.glob("*.csv")))]).exit_code == 0
    posts = tmp_path / "posts.jsonl"
    post = {"source": "files", "external_id": "1", "created_at": "2026-11-20T09:30:00Z"}
    posts.write_text(json.dumps({**post, "text": "Dr Dan Smith at Meanwood Health Centre"}), encoding="utf-8")
    result = runner.invoke(app, ["collect", "import", str(posts)])
    assert result.exit_code == 1
    output = " ".join(result.output.split())
    assert "error: database error:" in output and "Traceback" not in output
    needs = f"this version of Vigil needs {migrate.head_revision()}"
    assert f"(the database is at schema 0009, {needs}: run `vigil db upgrade`)" in output


def test_a_downgrade_that_would_forget_erasures_stops_and_says_how_to_go_ahead(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from datetime import UTC, datetime

    from collector.store import address_key
    from vigil import migrate
    from vigil.models import ErasedPost
    from vigil.runtime import Runtime

    monkeypatch.setenv("VIGIL_DATABASE__URL", f"sqlite:///{tmp_path / 'vigil.db'}")
    rt = Runtime.load(None)
    migrate.upgrade(rt.engine)
    with rt.transaction() as session:
        session.add(ErasedPost(key=address_key("https://x.com/i/status/1"), erased_at=datetime.now(UTC)))
    rt.close()
    result = runner.invoke(app, ["db", "downgrade", "0011"])
    assert result.exit_code == 1
    output = " ".join(result.output.split())
    assert "error: the database holds 1 post(s) erased on request" in output and "Traceback" not in output
    assert "add --forget-erasures" in output
    result = runner.invoke(app, ["db", "downgrade", "0011", "--forget-erasures"])
    assert result.exit_code == 0, result.output
    assert "Database is at 0011." in result.output
