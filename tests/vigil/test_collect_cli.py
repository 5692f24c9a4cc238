from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.collector.fakes.corpus import more_items
from tests.collector.fakes.feeds import FakeFeeds
from tests.collector.fakes.server import FakeServer, Reply, loopback_only  # noqa: F401  (autouse)
from vigil.cli import app
from vigil.paths import resource_dir

SAMPLE = [str(p) for p in sorted((resource_dir("config") / "sample" / "register").glob("*.csv"))]
runner = CliRunner()


def vigil(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


@pytest.fixture
def feed(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeFeeds]:
    server = FakeServer()
    feeds = FakeFeeds(server)
    monkeypatch.setenv("VIGIL_SOURCES__RSS__ENABLED", "true")
    monkeypatch.setenv("VIGIL_SOURCES__RSS__FEEDS", f"{server.base_url}/feeds/alerts-0")
    monkeypatch.setenv("VIGIL_COLLECTOR__RETRY_ATTEMPTS", "1")
    assert vigil("register", "import", *SAMPLE)[0] == 0
    yield feeds
    server.close()


def test_collect_once_polls_the_enabled_sources_and_reports(feed: FakeFeeds) -> None:
    feed.items += more_items(feed.items, 2, "Dr Daniel Smith at Meanwood Health Centre in Leeds")
    feed.items += more_items(feed.items, 1, "Harry Kane scores")
    code, output = vigil("collect", "--once", "--source", "rss")
    assert code == 0, output
    assert re.search(r"rss\s+│ 1\s+│ 3\s+│ 2\s+│ 0\s+│ 1\s+│ ok", output), output
    code, output = vigil("status")
    assert re.search(r"rss\s+│ enabled; last success 20\d\d-", output), output
    assert "rss checkpoint" in output


def test_a_failing_source_makes_collect_exit_non_zero(feed: FakeFeeds) -> None:
    feed.server.fail(Reply(500, b"boom"), path="/feeds/.*", times=None)
    code, output = vigil("collect", "--once")
    assert code == 1
    assert "failed:" in output and "500" in output


def test_asking_for_a_source_that_is_not_enabled_is_an_error(feed: FakeFeeds) -> None:
    code, output = vigil("collect", "--once", "--source", "x")
    assert code == 1 and "error: source 'x' is not enabled (enabled: rss)" in output


def test_asking_for_a_source_that_does_not_exist_names_the_sources(feed: FakeFeeds) -> None:
    code, output = vigil("collect", "--once", "--source", "twitter")  # it said "is not enabled"
    assert code == 1
    assert "error: there is no source 'twitter'; the sources are x, bluesky, mastodon" in output


def test_collect_needs_once(env: dict[str, str]) -> None:
    code, output = vigil("collect")
    assert "--once" in output  # the group's help
    code, output = vigil("collect", "--source", "rss")
    assert code == 1 and "say --once" in output


def test_collect_import_reports_and_export_writes_the_same_format(
    env: dict[str, str], tmp_path: Path
) -> None:
    assert vigil("register", "import", *SAMPLE)[0] == 0
    posts = tmp_path / "reviews.jsonl"
    posts.write_text(
        json.dumps(
            {
                "source": "reviews",
                "external_id": "1",
                "url": "https://reviews.example/1",
                "author": "Jo",
                "created_at": "2026-11-20T09:00:00Z",
                "text": "Dr Daniel Smith at Meanwood Health Centre in Leeds ignored me",
            }
        )
        + "\n"
    )
    code, output = vigil("collect", "import", str(posts))
    assert code == 0, output
    assert "1 post(s) read: 1 stored, 0 already stored, 0 naming no" in " ".join(output.split())
    out = tmp_path / "out.csv"
    code, output = vigil(
        "mentions", "export", "--format", "csv", "--output", str(out), "--since", "2026-11-01"
    )
    assert code == 0, output
    assert out.read_text().splitlines()[0] == (
        "id,source,external_id,url,author,created_at,text,doctors,practices,matched_text,labels,classified_at"
    )
    code, output = vigil("collect", "import", str(out))
    assert "1 already stored" in output


def test_importing_a_post_erased_on_request_again_stores_nothing_and_says_so(
    env: dict[str, str], tmp_path: Path
) -> None:
    assert vigil("register", "import", *SAMPLE)[0] == 0
    post = {"source": "reviews", "external_id": "7", "url": "https://reviews.example/7", "author": "Jo",
            "created_at": "2026-11-20T09:00:00Z", "text": "Dr Daniel Smith at Meanwood Health Centre in Leeds"}  # fmt: skip
    posts = tmp_path / "posts.jsonl"
    posts.write_text(json.dumps(post) + "\n")
    assert vigil("collect", "import", str(posts))[0] == 0
    assert vigil("mentions", "forget", "--url", "https://reviews.example/7", "--yes")[0] == 0

    code, output = vigil("collect", "import", str(posts))

    assert code == 0, output
    assert "0 stored, 0 already stored, 0 naming no registered doctor or practice, 1 erased on request" in (
        " ".join(output.split())
    )
    assert vigil("mentions", "export")[1].strip() == ""


def test_an_export_to_the_terminal_carries_no_escape_sequence_from_a_post(
    env: dict[str, str], tmp_path: Path
) -> None:
    assert vigil("register", "import", *SAMPLE)[0] == 0
    hostile = (
        "Dr Daniel Smith at Meanwood Health Centre in Leeds \x1b[2J\x1b]0;PWNED\x07\u202egnp.exe \x9b31m"
    )
    post = {"source": "reviews", "external_id": "1", "url": "https://reviews.example/1", "author": "Jo",
            "created_at": "2026-11-20T09:00:00Z", "text": hostile}  # fmt: skip
    posts = tmp_path / "posts.jsonl"
    posts.write_text(json.dumps(post) + "\n")
    assert vigil("collect", "import", str(posts))[0] == 0
    for export_format in ("csv", "jsonl"):
        code, output = vigil("mentions", "export", "--format", export_format)
        assert code == 0 and "PWNED" in output, output
        assert not any(character in output for character in "\x1b\x07\u202e\x9b"), export_format
    record = json.loads(vigil("mentions", "export")[1].splitlines()[0])
    assert record["text"] == hostile  # JSON Lines stays lossless: the characters are escaped, not dropped


def test_import_errors_are_listed_and_nothing_is_imported(env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("source,external_id,url,author,created_at,text\nreviews,1,,,yesterday,hi\n")
    code, output = vigil("collect", "import", str(bad))
    assert code == 1
    assert "error: 1 error(s); nothing was imported" in output
    assert f"{bad}:2: created_at:" in output


def test_export_rejects_an_unknown_format_or_recipient(env: dict[str, str]) -> None:
    assert (
        vigil("mentions", "export", "--format", "xml")[1].count("error: --format must be jsonl or csv") == 1
    )
    code, output = vigil("mentions", "export", "--recipient", "nobody@example.com")
    assert code == 1 and "no recipient nobody@example.com" in output


def test_export_help_says_what_each_kind_of_recipient_sees() -> None:
    """It said "their practice's mentions", which a doctor's or the organisation's recipient is not."""
    code, output = vigil("mentions", "export", "--help")
    assert code == 0
    helped = " ".join(output.replace("│", " ").split())
    assert "their practice's mentions" not in helped
    assert "a doctor's only that doctor, the organisation's everything" in helped


def test_an_export_piped_into_a_reader_that_stops_early_ends_quietly(
    env: dict[str, str], tmp_path: Path
) -> None:
    """`vigil mentions export | head`: it said "error: [Errno 32] Broken pipe" and exited 1."""
    assert vigil("register", "import", *SAMPLE)[0] == 0
    text = "Dr Daniel Smith at Meanwood Health Centre in Leeds " + "kept me waiting " * 30
    posts = tmp_path / "posts.jsonl"
    posts.write_text(
        "".join(
            json.dumps(
                {
                    "source": "reviews",
                    "external_id": str(n),
                    "url": f"https://reviews.example/{n}",
                    "author": "Jo",
                    "created_at": "2026-11-20T09:00:00Z",
                    "text": text,
                }
            )
            + "\n"
            for n in range(400)
        )
    )
    assert vigil("collect", "import", str(posts))[0] == 0
    export = subprocess.Popen(
        [sys.executable, "-m", "vigil", "mentions", "export"],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert export.stdout is not None and export.stderr is not None
    assert json.loads(export.stdout.readline())["source"] == "reviews"
    export.stdout.close()  # as `head -1` does: the other 399 lines have nowhere to go
    errors = export.stderr.read().decode()
    assert export.wait(timeout=120) == 141
    assert "error" not in errors.lower() and "Traceback" not in errors
