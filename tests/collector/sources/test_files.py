from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from collector.export import export_mentions
from collector.sources.files import PostImportError, escape_cell, import_posts, read_posts, unescape_cell
from tests.conftest import Tenancy
from vigil.models import Classification, Mention
from vigil.settings import Settings

GOOD = {
    "source": "reviews",
    "external_id": "r-1",
    "url": "https://reviews.example/r/1",
    "author": "Jo B.",
    "created_at": "2026-11-20T09:30:00Z",
    "text": "Dr Amira Hassan in Leeds was dismissive",
}


def jsonl(path: Path, *rows: dict[str, object]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def csv_file(path: Path, *rows: dict[str, object], header: list[str] | None = None) -> Path:
    out = io.StringIO()
    writer = csv.DictWriter(out, header or list(GOOD), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


def test_it_reads_posts_from_jsonl_and_csv_alike(tmp_path: Path) -> None:
    from_jsonl = read_posts(jsonl(tmp_path / "a.jsonl", GOOD))
    from_csv = read_posts(csv_file(tmp_path / "a.csv", GOOD))
    assert from_jsonl == from_csv
    [post] = from_csv
    assert (post.source, post.external_id, post.author, post.text) == (
        "reviews",
        "r-1",
        "Jo B.",
        GOOD["text"],
    )
    assert post.created_at == datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


def test_fields_it_does_not_know_are_ignored(tmp_path: Path) -> None:
    [post] = read_posts(jsonl(tmp_path / "a.jsonl", {**GOOD, "stars": 1, "labels": ["critical"]}))
    assert post.external_id == "r-1"


def test_every_bad_line_is_reported_with_its_line_and_field(tmp_path: Path) -> None:
    path = jsonl(
        tmp_path / "bad.jsonl",
        GOOD,
        {**GOOD, "external_id": "r-2", "created_at": "2026-11-20 09:30"},
        {**GOOD, "external_id": "", "text": ""},
        {**GOOD, "external_id": "r-4", "url": "javascript:alert(1)", "source": "Reviews!"},
        {**GOOD, "external_id": "r-1"},
    )
    with path.open("a") as handle:
        handle.write('{"source": "reviews", \n[1, 2]\n')
    with pytest.raises(PostImportError) as caught:
        read_posts(path)
    lines = [str(error) for error in caught.value.errors]
    assert f"{path}:2: created_at: '2026-11-20 09:30' has no time zone" in lines[0]
    assert any(line.startswith(f"{path}:3: external_id: must not be empty") for line in lines)
    assert any(line.startswith(f"{path}:3: text: must not be empty") for line in lines)
    assert any(line.startswith(f"{path}:4: source:") for line in lines)
    assert any(
        line.startswith(f"{path}:4: url: 'javascript:alert(1)' is not an http(s) URL") for line in lines
    )
    assert any(line.startswith(f"{path}:5: external_id: appears twice (also line 1)") for line in lines)
    assert any(line.startswith(f"{path}:6: is not valid JSON") for line in lines)
    assert any(line.startswith(f"{path}:7: is not a JSON object") for line in lines)
    assert "nothing was imported" in str(caught.value)


def test_a_number_where_text_belongs_is_one_error_not_also_an_empty_one(tmp_path: Path) -> None:
    path = jsonl(tmp_path / "a.jsonl", {**GOOD, "external_id": 5})
    with pytest.raises(PostImportError) as caught:
        read_posts(path)
    assert [str(e) for e in caught.value.errors] == [f"{path}:1: external_id: must be text, not int"]


def test_csv_errors_name_the_line_where_the_record_starts(tmp_path: Path) -> None:
    multiline = {**GOOD, "external_id": "r-2", "text": "line one\nline two"}
    path = csv_file(
        tmp_path / "a.csv", GOOD, multiline, {**GOOD, "external_id": "r-3", "created_at": "yesterday"}
    )
    with pytest.raises(PostImportError) as caught:
        read_posts(path)
    assert [str(e) for e in caught.value.errors] == [
        f"{path}:5: created_at: 'yesterday' is not an ISO 8601 time such as 2026-11-24T08:30:00Z"
    ]


def test_jsonl_splits_lines_only_at_newlines_so_unicode_line_separators_stay_in_the_text(
    tmp_path: Path,
) -> None:
    text = "Dr Amira Hassan\u2028in Leeds\u0085was\u2029dismissive"
    good = tmp_path / "a.jsonl"
    good.write_text(json.dumps({**GOOD, "text": text}, ensure_ascii=False) + "\r\n", encoding="utf-8")
    [post] = read_posts(good)
    assert post.text == text
    bad = tmp_path / "bad.jsonl"
    lines = [{**GOOD, "text": text}, {**GOOD, "external_id": "r-2", "created_at": "soon"}]
    bad.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), encoding="utf-8")
    with pytest.raises(PostImportError) as caught:
        read_posts(bad)
    assert [str(e) for e in caught.value.errors] == [
        f"{bad}:2: created_at: 'soon' is not an ISO 8601 time such as 2026-11-24T08:30:00Z"
    ]


CSV_HEADER = "source,external_id,url,author,created_at,text\n"
CSV_GOOD = "reviews,r-1,,,2026-11-20T09:30:00Z,Dr Amira Hassan\n"
CSV_BAD = "reviews,r-9,,,soon,Dr Amira Hassan\n"


@pytest.mark.parametrize(
    ("body", "line"),
    [
        pytest.param("\n" + CSV_BAD, 3, id="after one blank line"),
        pytest.param(CSV_GOOD + "\n\n" + CSV_BAD, 5, id="after two blank lines"),
        pytest.param(
            'reviews,r-2,,,2026-11-20T09:30:00Z,"one\ntwo"\n' + CSV_BAD, 4, id="after a two-line cell"
        ),
        pytest.param('reviews,r-9,,,soon,"one\ntwo"\n', 2, id="in a two-line record"),
        pytest.param(CSV_GOOD.replace("\n", "\r\n") + "\r\n" + CSV_BAD, 4, id="with CRLF line ends"),
    ],
)
def test_csv_errors_name_the_physical_line_where_the_bad_record_starts(
    body: str, line: int, tmp_path: Path
) -> None:
    path = tmp_path / "a.csv"
    path.write_text(CSV_HEADER + body, encoding="utf-8", newline="")
    with pytest.raises(PostImportError) as caught:
        read_posts(path)
    assert [str(e) for e in caught.value.errors] == [
        f"{path}:{line}: created_at: 'soon' is not an ISO 8601 time such as 2026-11-24T08:30:00Z"
    ]


def test_a_csv_row_with_more_fields_than_the_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text(CSV_HEADER + "\n" + CSV_GOOD.replace("\n", ",extra\n"), encoding="utf-8")
    with pytest.raises(PostImportError, match=r"a.csv:3: has more fields than the header"):
        read_posts(path)


@pytest.mark.parametrize(
    "stray",
    [
        pytest.param(
            'reviews,r-2,,,2026-11-20T09:30:00Z,"Dr Amira Hassan kept me waiting\n', id="never closed"
        ),
        pytest.param('reviews,r-2,,,2026-11-20T09:30:00Z,"Dr Amira" Hassan\n', id="closed mid-cell"),
    ],
)
def test_a_stray_quote_in_a_csv_names_its_line_and_imports_nothing(
    stray: str, session: Session, settings: Settings, alice: Tenancy, tmp_path: Path
) -> None:
    """The lenient reader ran every later post into one cell, and stored the file short."""
    path = tmp_path / "a.csv"
    later = CSV_GOOD.replace("r-1", "r-3") + CSV_GOOD.replace("r-1", "r-4")
    path.write_text(CSV_HEADER + CSV_GOOD + stray + later, encoding="utf-8")
    with pytest.raises(PostImportError) as caught:
        import_posts(session, settings, path)
    [error] = [str(e) for e in caught.value.errors]
    assert error.startswith(f"{path}:3: is not valid CSV (")
    assert "stray quote" in error
    session.rollback()
    assert session.scalars(select(Mention)).all() == []


def test_a_csv_cell_too_long_to_read_is_an_error_naming_its_line(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text(CSV_HEADER + CSV_GOOD + CSV_GOOD.replace("Hassan", "x" * 200_000), encoding="utf-8")
    with pytest.raises(PostImportError, match=r"a.csv:3: is not valid CSV \(field larger than field limit"):
        read_posts(path)


def test_a_csv_without_a_required_column_is_refused(tmp_path: Path) -> None:
    path = csv_file(tmp_path / "a.csv", {"source": "x", "text": "t"}, header=["source", "text"])
    with pytest.raises(PostImportError, match="external_id: column is missing"):
        read_posts(path)


def test_a_file_that_is_not_utf8_or_empty_is_refused(tmp_path: Path) -> None:
    latin = tmp_path / "latin.csv"
    latin.write_bytes(
        "source,external_id,url,author,created_at,text\nx,1,,,2026-11-20T09:30:00Z,caf\xe9\n".encode(
            "latin-1"
        )
    )
    with pytest.raises(PostImportError, match=r"latin.csv:2: is not UTF-8"):
        read_posts(latin)
    with pytest.raises(PostImportError, match="contains no posts"):
        read_posts(jsonl(tmp_path / "empty.jsonl"))


def test_an_import_with_any_error_stores_nothing(
    session: Session, settings: Settings, alice: Tenancy, tmp_path: Path
) -> None:
    path = jsonl(tmp_path / "a.jsonl", GOOD, {**GOOD, "external_id": "r-2", "created_at": "soon"})
    with pytest.raises(PostImportError):
        import_posts(session, settings, path)
    session.rollback()
    assert session.scalars(select(Mention)).all() == []


def test_imported_posts_are_matched_and_stored_like_collected_ones(
    session: Session, settings: Settings, alice: Tenancy, tmp_path: Path
) -> None:
    path = jsonl(tmp_path / "a.jsonl", GOOD, {**GOOD, "external_id": "r-2", "text": "Harry Kane scores"})
    report = import_posts(session, settings, path)
    session.commit()
    assert (report.read, report.store.stored, report.store.unmatched) == (2, 1, 1)
    [mention] = session.scalars(select(Mention)).all()
    assert mention.entities[0].doctor_id == alice.doctors[0].id
    again = import_posts(session, settings, path)
    assert again.store.duplicates == 1 and again.store.stored == 0


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_export_then_import_gives_back_the_same_mentions(
    fmt: str, session: Session, settings: Settings, alice: Tenancy, tmp_path: Path
) -> None:
    tricky = [
        GOOD,
        {
            **GOOD,
            "external_id": "r-2",
            "url": "https://reviews.example/r/2",
            "author": "@leedsmum",
            "text": '=HYPERLINK("x") Dr Amira Hassan in Leeds',
        },
        {
            **GOOD,
            "external_id": "r-3",
            "url": "",
            "text": '\'=quoted, "commas"\nand lines: Dr Amira Hassan in Leeds',
        },
        {
            **GOOD,
            "external_id": "r-4",
            "url": "https://reviews.example/r/4?utm_source=x",
            "author": "-dash",
            "text": "+plus Dr Amira Hassan in Leeds ünïcödé 😠",
        },
        {
            **GOOD,
            "external_id": "r-5",
            "url": "",
            "text": "Dr Amira Hassan\u2028in Leeds\u2029was\u0085rude\x0b\x0c\x1c\x1d\x1e",
        },
    ]
    import_posts(session, settings, jsonl(tmp_path / "in.jsonl", *tricky))
    session.commit()
    before = rows(session)
    exported = tmp_path / f"out.{fmt}"
    with exported.open("w", encoding="utf-8", newline="") as out:
        assert export_mentions(session, out, fmt) == 5
    session.execute(delete(Mention))
    session.commit()
    report = import_posts(session, settings, exported)
    session.commit()
    assert report.store.stored == 5
    assert rows(session) == before


def rows(session: Session) -> list[tuple[object, ...]]:
    mentions = session.scalars(select(Mention).order_by(Mention.external_id)).all()
    return [
        (
            m.source,
            m.external_id,
            m.url,
            m.author,
            m.created_at,
            m.text,
            [(e.doctor_id, e.practice_id) for e in m.entities],
        )
        for m in mentions
    ]


def test_export_writes_entities_matched_text_and_labels(
    session: Session, settings: Settings, alice: Tenancy, tmp_path: Path
) -> None:
    second = {**GOOD, "external_id": "r-2", "url": ""}
    import_posts(session, settings, jsonl(tmp_path / "a.jsonl", GOOD, second))
    first = session.scalars(select(Mention).order_by(Mention.id)).first()
    assert first is not None
    session.add(Classification(mention=first, model_id="m", model_version="1", critical=True, scores={}))
    session.commit()
    out = io.StringIO()
    export_mentions(session, out, "jsonl")
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert records[0]["doctors"] == ["1000001"] and records[0]["practices"] == []
    assert records[0]["matched_text"] == ["Amira Hassan"]
    assert records[0]["labels"] == ["critical"] and records[0]["classified_at"]
    assert records[1]["labels"] == [] and records[1]["classified_at"] == ""


def test_export_since_a_date_leaves_out_older_mentions(
    session: Session, settings: Settings, alice: Tenancy, tmp_path: Path
) -> None:
    old = {**GOOD, "external_id": "r-0", "url": "", "created_at": "2026-10-01T00:00:00Z"}
    import_posts(session, settings, jsonl(tmp_path / "a.jsonl", GOOD, old))
    out = io.StringIO()
    assert export_mentions(session, out, "jsonl", since=datetime(2026, 11, 1, tzinfo=UTC)) == 1
    assert json.loads(out.getvalue())["external_id"] == "r-1"


def test_a_recipients_export_holds_only_what_they_may_see(
    session: Session, settings: Settings, alice: Tenancy, bob: Tenancy, tmp_path: Path
) -> None:
    both = {**GOOD, "external_id": "r-2", "url": "", "text": "Dr Amira Hassan in Leeds and Bob Lane Practice"}
    only_bob = {**GOOD, "external_id": "r-3", "url": "", "text": "Bob Lane Practice lost my notes"}
    import_posts(session, settings, jsonl(tmp_path / "a.jsonl", GOOD, both, only_bob))
    session.commit()
    assert alice.recipient is not None
    out = io.StringIO()
    assert export_mentions(session, out, "jsonl", recipient=alice.recipient) == 2
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["external_id"] for r in records] == ["r-1", "r-2"]
    assert all(r["practices"] == [] and r["doctors"] == ["1000001"] for r in records)  # never bob's codes


@pytest.mark.parametrize(
    "value", ["=1+1", "+44 113", "-x", "@leedsmum", "\tx", "'=x", "''@y", "'plain", "plain", ""]
)
def test_csv_cells_are_escaped_and_unescaped_exactly(value: str) -> None:
    escaped = escape_cell(value)
    assert escaped[:1] not in {"=", "+", "-", "@", "\t", "\r"}
    assert unescape_cell(escaped) == value
