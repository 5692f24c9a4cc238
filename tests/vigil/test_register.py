from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vigil.labels import LABELS
from vigil.models import Doctor, Practice, Recipient, Scope, Tenant, TenantKind
from vigil.paths import resource_dir
from vigil.register import Kind, RegisterImportError, export_register, import_register

SAMPLE = resource_dir("config") / "sample" / "register"
SAMPLE_FILES = sorted(SAMPLE.glob("*.csv"))
PRACTICES = "ods_code,name,town,postcode,handles,website\n"
DOCTORS = "gmc_number,full_name,aliases,handles,practice_ods_code,specialty,town\n"
RECIPIENTS = "email,name,scope\n"


def csv_file(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding=encoding)
    return path


def count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def test_it_imports_the_bundled_sample_register(session: Session) -> None:
    report = import_register(session, SAMPLE_FILES, "MDO")
    session.commit()
    assert report.counts[Kind.PRACTICES].created == count(session, Practice) >= 20
    assert report.counts[Kind.DOCTORS].created == count(session, Doctor) >= 90
    assert count(session, Recipient) >= 21
    assert session.scalar(select(Tenant).where(Tenant.kind == TenantKind.ORGANISATION))


def test_the_sample_register_has_the_deliberately_ambiguous_doctors(session: Session) -> None:
    import_register(session, SAMPLE_FILES, "MDO")
    smiths = session.scalars(select(Doctor).where(Doctor.full_name.like("% Smith"))).all()
    assert len({doctor.town for doctor in smiths}) >= 2
    assert session.scalar(select(Doctor).where(Doctor.full_name == "Harry Kane"))


def test_reimporting_reports_every_row_unchanged(session: Session) -> None:
    import_register(session, SAMPLE_FILES, "MDO")
    session.commit()
    report = import_register(session, SAMPLE_FILES, "MDO")
    for kind in Kind:
        assert report.counts[kind].created == report.counts[kind].updated == 0
        assert report.counts[kind].unchanged > 0


def test_export_writes_back_exactly_what_was_imported(session: Session, tmp_path: Path) -> None:
    import_register(session, SAMPLE_FILES, "MDO")
    session.commit()
    for path in export_register(session, tmp_path / "out"):
        assert path.read_text(encoding="utf-8") == (SAMPLE / path.name).read_text(encoding="utf-8")


def test_it_upserts_by_code_and_counts_what_changed(session: Session, tmp_path: Path) -> None:
    first = csv_file(tmp_path, "p.csv", PRACTICES + "A12345,Old Name,Leeds,LS1 1AA,,\n")
    import_register(session, [first], "MDO")
    second = csv_file(
        tmp_path, "p2.csv", PRACTICES + "A12345,New Name,Leeds,LS1 1AA,,\nB12345,Other,York,,,\n"
    )
    report = import_register(session, [second], "MDO")
    assert (report.counts[Kind.PRACTICES].created, report.counts[Kind.PRACTICES].updated) == (1, 1)
    practice = session.scalar(select(Practice).where(Practice.ods_code == "A12345"))
    assert practice is not None and practice.name == practice.tenant.name == "New Name"


def test_it_accepts_a_byte_order_mark_and_multi_valued_fields(session: Session, tmp_path: Path) -> None:
    practices = csv_file(tmp_path, "p.csv", PRACTICES + "A12345,Surgery,Leeds,,@one;@two,\n", "utf-8-sig")
    doctors = csv_file(
        tmp_path,
        "d.csv",
        DOCTORS + "1234567,Zoë Ødegaard,Dr Zoe; Dr O,@drzoe;zoe.bsky.social,A12345,GP,Leeds\n",
    )
    import_register(session, [doctors, practices], "MDO")  # order of files does not matter
    doctor = session.scalar(select(Doctor))
    assert doctor is not None
    assert doctor.aliases == ["Dr Zoe", "Dr O"]
    assert doctor.handles == ["@drzoe", "zoe.bsky.social"]
    assert doctor.practice is not None and doctor.practice.handles == ["@one", "@two"]


@pytest.mark.parametrize(
    ("name", "text", "error"),
    [
        (
            "p.csv",
            PRACTICES + "A1234,Surgery,,,,\n",
            "p.csv:2: ods_code: 'A1234' is not an ODS code",
        ),
        ("p.csv", PRACTICES + "A12345,,Leeds,,,\n", "p.csv:2: name: must not be empty"),
        (
            "p.csv",
            PRACTICES + "A12345,S,,,,\nA12345,T,,,,\n",
            "p.csv:3: ods_code: A12345 appears twice in this file (also line 2)",
        ),
        (
            "p.csv",
            PRACTICES + "A12345,S,,NOT A CODE,,\n",
            "p.csv:2: postcode: 'NOT A CODE' is not a UK postcode",
        ),
        (
            "p.csv",
            PRACTICES + "A12345,S,,,bad handle,\n",
            "p.csv:2: handles: 'bad handle' is not a handle",
        ),
        (
            "p.csv",
            PRACTICES + "A12345,S,,,,ftp://x\n",
            "p.csv:2: website: 'ftp://x' is not an http(s) URL",
        ),
        ("p.csv", PRACTICES + 'A12345,"Two\nLines",,,,\n', "p.csv:2: name: contains a line break"),
        (
            "d.csv",
            DOCTORS + "123456,Dr A,,,,,\n",
            "d.csv:2: gmc_number: '123456' is not a GMC number",
        ),
        (
            "d.csv",
            DOCTORS + "1234567,Dr A,,,Z99999,,\n",
            "d.csv:2: practice_ods_code: practice Z99999 is not in the register",
        ),
        (
            "r.csv",
            RECIPIENTS + "not-an-email,X,org\n",
            "r.csv:2: email: 'not-an-email' is not an email address",
        ),
        (
            "r.csv",
            RECIPIENTS + "a@b.example,X,everyone\n",
            "r.csv:2: scope: 'everyone' is not org, practice:ODS_CODE or doctor:GMC_NUMBER",
        ),
        (
            "r.csv",
            RECIPIENTS + "a@b.example,X,practice:Z99999\n",
            "r.csv:2: scope: practice Z99999 is not in the register",
        ),
        ("x.csv", "foo,bar\n1,2\n", "x.csv:1: header 'foo,bar' is not a register file"),
        ("x.csv", "", "x.csv:1: is empty: a register file starts with its header line"),
        ("x.csv", "\n\n", "x.csv:1: is empty: a register file starts with its header line"),
        (
            "d.csv",
            DOCTORS.replace(",town", "") + "1234567,Dr A,,,,,\n",
            "d.csv:1: town: column is missing from this doctors file (missing: town; the header needs "
            "gmc_number,full_name,aliases,handles,practice_ods_code,specialty,town)",
        ),
        (
            "r.csv",
            "email,name\na@b.example,X\n",
            "r.csv:1: scope: column is missing from this recipients file",
        ),
        (
            "x.csv",
            "email,name,scope,emial\n",
            "x.csv:1: emial: unknown column for a recipients file",
        ),
    ],
)
def test_each_bad_row_is_named_by_file_line_and_field(
    session: Session, tmp_path: Path, name: str, text: str, error: str
) -> None:
    path = csv_file(tmp_path, name, text)
    with pytest.raises(RegisterImportError) as raised:
        import_register(session, [path], "MDO")
    assert any(str(e).endswith(error) or error in str(e) for e in raised.value.errors), raised.value.errors
    assert str(path) in str(raised.value)


def test_a_file_that_is_not_utf8_is_refused(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_bytes((PRACTICES + "A12345,Caf\xe9 Surgery,,,,\n").encode("latin-1"))
    with pytest.raises(RegisterImportError, match="p.csv:2: is not UTF-8"):
        import_register(session, [path], "MDO")


@pytest.mark.parametrize(
    "stray",
    [
        pytest.param('A12346,"Stray Surgery,Leeds,,,\n', id="never closed"),
        pytest.param('A12346,"Stray" Surgery,Leeds,,,\n', id="closed mid-cell"),
    ],
)
def test_a_stray_quote_names_the_line_it_is_on_and_imports_nothing(
    session: Session, tmp_path: Path, stray: str
) -> None:
    """The lenient reader ran the rest of the file into one cell, and named the file's last line."""
    later = "".join(f"A1235{n},Surgery {n},Leeds,,,\n" for n in range(5))
    path = csv_file(tmp_path, "p.csv", PRACTICES + "A12345,Surgery,Leeds,,,\n" + stray + later)
    with pytest.raises(RegisterImportError) as raised:
        import_register(session, [path], "MDO")
    [error] = [str(e) for e in raised.value.errors]
    assert error.startswith(f"{path}:3: is not valid CSV (")
    assert "stray quote" in error
    assert count(session, Practice) == 0


def test_one_bad_row_imports_nothing_from_any_file(session: Session, tmp_path: Path) -> None:
    good = csv_file(tmp_path, "p.csv", PRACTICES + "A12345,Surgery,Leeds,,,\n")
    bad = csv_file(tmp_path, "d.csv", DOCTORS + "1234567,Dr Good,,,A12345,,\n7654321,,,,A12345,,\n")
    with pytest.raises(RegisterImportError, match="d.csv:3: full_name"):
        import_register(session, [good, bad], "MDO")
    assert count(session, Practice) == count(session, Doctor) == 0


def test_recipients_are_scoped_to_the_organisation_a_practice_or_a_doctor(
    session: Session, tmp_path: Path
) -> None:
    practices = csv_file(tmp_path, "p.csv", PRACTICES + "A12345,Surgery,Leeds,,,\n")
    doctors = csv_file(tmp_path, "d.csv", DOCTORS + "1234567,Dr A,,,A12345,,\n")
    recipients = csv_file(
        tmp_path,
        "r.csv",
        "email,name,scope,immediate_alerts,digest,categories\n"
        "Org@MDO.example,Org,org,,,\n"
        "pm@a.example,PM,practice:A12345,true,false,\n"
        "doc@a.example,Doc,doctor:1234567,no,yes,threat;abusive\n",
    )
    import_register(session, [practices, doctors, recipients], "MDO")
    by_email = {r.email: r for r in session.scalars(select(Recipient))}
    assert by_email["org@mdo.example"].scope is Scope.ORG
    assert by_email["org@mdo.example"].tenant.kind is TenantKind.ORGANISATION
    assert by_email["pm@a.example"].practice is not None and not by_email["pm@a.example"].digest
    doc = by_email["doc@a.example"]
    assert (doc.scope, doc.immediate_alerts, doc.categories) == (
        Scope.DOCTOR,
        False,
        ["threat", "abusive"],
    )
    assert doc.tenant.slug == "a12345"


def test_reimporting_recipients_without_the_preference_columns_keeps_their_opt_outs(
    session: Session, tmp_path: Path
) -> None:
    opted_out = csv_file(
        tmp_path,
        "r1.csv",
        "email,name,scope,immediate_alerts,digest,categories\npm@a.example,PM,org,false,false,threat\n",
    )
    import_register(session, [opted_out], "MDO")
    renamed = csv_file(tmp_path, "r2.csv", RECIPIENTS + "pm@a.example,Practice manager,org\n")
    report = import_register(session, [renamed], "MDO")
    assert report.counts[Kind.RECIPIENTS].updated == 1
    recipient = session.scalar(select(Recipient))
    assert recipient is not None
    assert (recipient.name, recipient.immediate_alerts, recipient.digest, recipient.categories) == (
        "Practice manager",
        False,
        False,
        ["threat"],
    )


def test_new_recipients_without_the_preference_columns_get_everything(
    session: Session, tmp_path: Path
) -> None:
    recipients = csv_file(tmp_path, "r.csv", RECIPIENTS + "pm@a.example,PM,org\n")
    import_register(session, [recipients], "MDO")
    recipient = session.scalar(select(Recipient))
    assert recipient is not None
    assert (recipient.immediate_alerts, recipient.digest, recipient.categories) == (
        True,
        True,
        list(LABELS),
    )


def test_an_empty_preference_cell_means_the_default_as_other_empty_cells_do(
    session: Session, tmp_path: Path
) -> None:
    header = "email,name,scope,immediate_alerts,digest,categories\n"
    import_register(
        session, [csv_file(tmp_path, "r1.csv", header + "pm@a.example,PM,org,no,no,threat\n")], "MDO"
    )
    import_register(session, [csv_file(tmp_path, "r2.csv", header + "pm@a.example,PM,org,,,\n")], "MDO")
    recipient = session.scalar(select(Recipient))
    assert recipient is not None
    assert (recipient.immediate_alerts, recipient.digest, recipient.categories) == (True, True, list(LABELS))


@pytest.mark.parametrize(
    ("header", "first", "second", "model", "error"),
    [
        (PRACTICES, "A12345,One,,,,\n", "a12345,Two,,,,\n", Practice, "ods_code: A12345 also appears in"),
        (
            DOCTORS,
            "1234567,Dr A,,,,,\n",
            "1234567,Dr B,,,,,\n",
            Doctor,
            "gmc_number: 1234567 also appears in",
        ),
        (
            RECIPIENTS,
            "pm@a.example,A,org\n",
            "PM@a.example,B,org\n",
            Recipient,
            "email: pm@a.example also appears in",
        ),
    ],
    ids=["ods_code", "gmc_number", "email"],
)
def test_the_same_key_in_two_files_is_an_error_naming_both(
    session: Session, tmp_path: Path, header: str, first: str, second: str, model: type, error: str
) -> None:
    one = csv_file(tmp_path, "one.csv", header + first)
    two = csv_file(tmp_path, "two.csv", header + "\n" + second)
    with pytest.raises(RegisterImportError) as raised:
        import_register(session, [one, two], "MDO")
    assert [str(e) for e in raised.value.errors] == [f"{two}:3: {error} {one}:2"]
    assert count(session, model) == 0
