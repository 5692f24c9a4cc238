"""Register import and export: practices, doctors and recipients as CSV, validated all-or-nothing.

Three CSV kinds are told apart by their header:

* practices: ``ods_code,name,town,postcode,handles,website``
* doctors: ``gmc_number,full_name,aliases,handles,practice_ods_code,specialty,town``
* recipients: ``email,name,scope`` and optionally ``immediate_alerts,digest,categories``

Multi-valued fields are ``;``-separated. Any error in any row of any file imports nothing, and
so does a key (ODS code, GMC number, email) given twice, in one file or across files.

An empty cell means the field's default, as everywhere in the register: no town, no handles, and
for a recipient ``true`` and all categories. A recipients file without a preference column leaves
an existing recipient's choice alone (an opt-out must survive a file that never mentioned it);
only new recipients get the defaults.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from vigil.errors import VigilError
from vigil.labels import LABELS
from vigil.models import Doctor, Practice, Recipient, Scope, Tenant, TenantKind
from vigil.settings import EMAIL

ODS_CODE = re.compile(r"^[A-Z][0-9]{5}$")
GMC_NUMBER = re.compile(r"^[0-9]{7}$")
POSTCODE = re.compile(r"^[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2}$")
HANDLE = re.compile(r"^@?[\w.\-]+(@[\w.\-]+)?$|^u/[\w\-]+$")
CONTROL = re.compile(r"[\x00-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
ORG_SLUG = "org"


class Kind(StrEnum):
    PRACTICES = "practices"
    DOCTORS = "doctors"
    RECIPIENTS = "recipients"


COLUMNS: dict[Kind, tuple[str, ...]] = {
    Kind.PRACTICES: ("ods_code", "name", "town", "postcode", "handles", "website"),
    Kind.DOCTORS: (
        "gmc_number",
        "full_name",
        "aliases",
        "handles",
        "practice_ods_code",
        "specialty",
        "town",
    ),
    Kind.RECIPIENTS: ("email", "name", "scope", "immediate_alerts", "digest", "categories"),
}
REQUIRED: dict[Kind, tuple[str, ...]] = {
    Kind.PRACTICES: COLUMNS[Kind.PRACTICES],
    Kind.DOCTORS: COLUMNS[Kind.DOCTORS],
    Kind.RECIPIENTS: ("email", "name", "scope"),
}


@dataclass(frozen=True)
class RowError:
    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class RegisterImportError(VigilError):
    """Some rows are invalid; nothing was imported."""

    def __init__(self, errors: list[RowError]) -> None:
        self.errors = errors
        shown = "\n".join(f"  {error}" for error in errors[:50])
        more = f"\n  ... and {len(errors) - 50} more" if len(errors) > 50 else ""
        super().__init__(f"{len(errors)} error(s); nothing was imported:\n{shown}{more}")


@dataclass
class Counts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass
class ImportReport:
    counts: dict[Kind, Counts] = field(default_factory=lambda: {kind: Counts() for kind in Kind})


@dataclass
class Row:
    file: str
    line: int
    values: dict[str, str]


@dataclass
class CsvFile:
    path: Path
    kind: Kind
    rows: list[Row]


def read_csv(path: Path, errors: list[RowError]) -> CsvFile | None:
    """Read one register CSV and tell its kind from the header; record errors instead of raising."""
    name = str(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        errors.append(RowError(name, 0, "", "file does not exist"))
        return None
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        errors.append(RowError(name, line, "", "is not UTF-8 text (save the file as UTF-8)"))
        return None
    # Strict, and a plain reader that gives the line each record starts on: a stray quote is an
    # error at its own line, not a cell that runs on to the end of the file and is named there.
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [column.strip() for column in next(reader, [])]
    except csv.Error as exc:
        errors.append(RowError(name, 1, "", csv_problem(exc)))
        return None
    if not any(header):
        errors.append(RowError(name, 1, "", "is empty: a register file starts with its header line"))
        return None
    kind = detect_kind(header)
    meant = [k for k in Kind if REQUIRED[k][0] in header]  # its key column says what it is for
    if kind is None and len(meant) == 1:
        missing = [column for column in REQUIRED[meant[0]] if column not in header]
        errors.append(
            RowError(
                name,
                1,
                missing[0],
                f"column is missing from this {meant[0]} file "
                f"(missing: {','.join(missing)}; the header needs {','.join(REQUIRED[meant[0]])})",
            )
        )
        return None
    if kind is None:
        errors.append(
            RowError(
                name,
                1,
                "",
                f"header {','.join(header)!r} is not a register file; "
                f"expected one of: " + "; ".join(",".join(REQUIRED[k]) for k in Kind),
            )
        )
        return None
    unknown = [column for column in header if column not in COLUMNS[kind]]
    if unknown:
        errors.append(RowError(name, 1, unknown[0], f"unknown column for a {kind} file"))
        return None
    rows = []
    start = reader.line_num + 1
    try:
        for values in reader:
            if len(values) > len(header):
                errors.append(RowError(name, start, "", "more fields than the header has"))
            else:
                cleaned = {
                    key: (values[i] if i < len(values) else "").strip() for i, key in enumerate(header)
                }
                if any(cleaned.values()):
                    rows.append(Row(name, start, cleaned))
            start = reader.line_num + 1
    except csv.Error as exc:
        errors.append(RowError(name, start, "", csv_problem(exc)))
    return CsvFile(path, kind, rows)


def csv_problem(exc: csv.Error) -> str:
    """A CSV syntax error (strict reading) for the operator, at the line its record starts on."""
    return f'is not valid CSV ({exc}): look for a stray quote ("); inside a quoted cell, write one as ""'


def detect_kind(header: list[str]) -> Kind | None:
    for kind in Kind:
        if set(REQUIRED[kind]) <= set(header):
            return kind
    return None


def split_multi(value: str) -> list[str]:
    return [part.strip() for part in value.split(";") if part.strip()]


def join_multi(values: Iterable[str]) -> str:
    return ";".join(values)


class _Validator:
    """Checks rows one field at a time and collects every error with its file, line and field."""

    def __init__(self, errors: list[RowError]) -> None:
        self.errors = errors

    def fail(self, row: Row, column: str, message: str) -> None:
        self.errors.append(RowError(row.file, row.line, column, message))

    def text(self, row: Row, column: str, required: bool = False, limit: int = 200) -> str:
        value = row.values.get(column, "")
        if required and not value:
            self.fail(row, column, "must not be empty")
        elif CONTROL.search(value):
            self.fail(row, column, "contains a line break or control character")
        elif len(value) > limit:
            self.fail(row, column, f"is longer than {limit} characters")
        return value

    def matching(self, row: Row, column: str, pattern: re.Pattern[str], what: str) -> str:
        value = row.values.get(column, "")
        if not pattern.match(value):
            self.fail(row, column, f"{value!r} is not {what}")
        return value

    def handles(self, row: Row, column: str) -> list[str]:
        handles = split_multi(row.values.get(column, ""))
        for handle in handles:
            if not HANDLE.match(handle) or len(handle) > 100:
                self.fail(
                    row,
                    column,
                    f"{handle!r} is not a handle (@name, name.bsky.social, @name@instance or u/name)",
                )
        return handles

    def names(self, row: Row, column: str) -> list[str]:
        names = split_multi(row.values.get(column, ""))
        for name in names:
            if CONTROL.search(name) or len(name) > 200:
                self.fail(row, column, f"{name!r} is not a single-line name of at most 200 characters")
        return names

    def flag(self, row: Row, column: str) -> bool:
        value = row.values.get(column, "").lower() or "true"
        if value not in {"true", "false", "yes", "no", "1", "0"}:
            self.fail(row, column, f"{value!r} is not true or false")
        return value in {"true", "yes", "1"}

    def unique(self, row: Row, column: str, key: str, seen: dict[str, Row]) -> None:
        """Fail a key an earlier row of this import has: in another file, the later one would silently win."""
        first = seen.setdefault(key, row) if key else row
        if first is row:
            return
        if first.file == row.file:
            self.fail(row, column, f"{key} appears twice in this file (also line {first.line})")
        else:
            self.fail(row, column, f"{key} also appears in {first.file}:{first.line}")


def recipient_defaults() -> dict[str, Any]:
    """What a new recipient gets unless the file says otherwise: every alert and the digest."""
    return {"immediate_alerts": True, "digest": True, "categories": list(LABELS)}


def import_register(session: Session, paths: Iterable[Path], organisation_name: str) -> ImportReport:
    """Validate every row of every file, then upsert them all; any error imports nothing."""
    errors: list[RowError] = []
    files = [csv_file for path in paths if (csv_file := read_csv(Path(path), errors))]
    order = list(Kind)
    files.sort(key=lambda csv_file: order.index(csv_file.kind))
    importer = _Importer(session, errors, organisation_name)
    for csv_file in files:
        importer.validate(csv_file)
    if errors:
        session.rollback()
        raise RegisterImportError(errors)
    report = importer.write()
    session.flush()
    return report


@dataclass
class _Planned:
    """A valid row waiting to be written: its key, its own fields, and the code it points at."""

    key: str
    fields: dict[str, Any]
    target: str = ""


class _Importer:
    """Validates every row before writing any, so that no invalid row ever reaches the session.

    An invalid object in the session would be flushed by the next query (autoflush) and fail on a
    database constraint with a traceback instead of the list of errors.
    """

    def __init__(self, session: Session, errors: list[RowError], organisation_name: str) -> None:
        self.session = session
        self.check = _Validator(errors)
        self.organisation_name = organisation_name
        self.report = ImportReport()
        self.practices = {p.ods_code: p for p in session.scalars(select(Practice))}
        self.doctors = {d.gmc_number: d for d in session.scalars(select(Doctor))}
        self.recipients = {r.email: r for r in session.scalars(select(Recipient))}
        self.ods_codes = set(self.practices)
        self.gmc_numbers = set(self.doctors)
        self.planned: dict[Kind, list[_Planned]] = {kind: [] for kind in Kind}
        self.seen: dict[Kind, dict[str, Row]] = {kind: {} for kind in Kind}

    def validate(self, csv_file: CsvFile) -> None:
        validator: Callable[[Row], _Planned] = getattr(self, f"_validate_{csv_file.kind}")
        for row in csv_file.rows:
            self.planned[csv_file.kind].append(validator(row))

    def write(self) -> ImportReport:
        """Upsert the validated rows; practices first, since doctors and recipients point at them."""
        for kind in Kind:
            writer: Callable[[_Planned], None] = getattr(self, f"_write_{kind}")
            for planned in self.planned[kind]:
                writer(planned)
        return self.report

    def _validate_practices(self, row: Row) -> _Planned:
        row.values["ods_code"] = row.values["ods_code"].upper()
        row.values["postcode"] = row.values["postcode"].upper()
        ods = self.check.matching(row, "ods_code", ODS_CODE, "an ODS code (a letter and 5 digits)")
        self.check.unique(row, "ods_code", ods, self.seen[Kind.PRACTICES])
        self.ods_codes.add(ods)
        postcode = row.values["postcode"]
        if postcode and not POSTCODE.match(postcode):
            self.check.fail(row, "postcode", f"{postcode!r} is not a UK postcode")
        website = self.check.text(row, "website", limit=500)
        if website and not re.match(r"^https?://[^\s/]+", website):
            self.check.fail(row, "website", f"{website!r} is not an http(s) URL")
        fields = {
            "name": self.check.text(row, "name", required=True),
            "town": self.check.text(row, "town", limit=100),
            "postcode": postcode,
            "handles": self.check.handles(row, "handles"),
            "website": website,
        }
        return _Planned(ods, fields)

    def _validate_doctors(self, row: Row) -> _Planned:
        gmc = self.check.matching(row, "gmc_number", GMC_NUMBER, "a GMC number (7 digits)")
        self.check.unique(row, "gmc_number", gmc, self.seen[Kind.DOCTORS])
        self.gmc_numbers.add(gmc)
        ods = row.values["practice_ods_code"].upper()
        if ods and ods not in self.ods_codes:
            self.check.fail(
                row,
                "practice_ods_code",
                f"practice {ods} is not in the register "
                "(import its practices file first, or in the same command)",
            )
        fields = {
            "full_name": self.check.text(row, "full_name", required=True),
            "aliases": self.check.names(row, "aliases"),
            "handles": self.check.handles(row, "handles"),
            "specialty": self.check.text(row, "specialty", limit=100),
            "town": self.check.text(row, "town", limit=100),
        }
        return _Planned(gmc, fields, target=ods)

    def _validate_recipients(self, row: Row) -> _Planned:
        email = row.values["email"].lower()
        if not EMAIL.match(email) or len(email) > 320:
            self.check.fail(row, "email", f"{row.values['email']!r} is not an email address")
        self.check.unique(row, "email", email, self.seen[Kind.RECIPIENTS])
        scope, code = self._scope(row)
        fields = {"name": self.check.text(row, "name"), "scope": scope, **self._preferences(row)}
        return _Planned(email, fields, target=code)

    def _preferences(self, row: Row) -> dict[str, Any]:
        """The preferences the file has columns for; a missing column must not undo an opt-out."""
        preferences: dict[str, Any] = {}
        for column in ("immediate_alerts", "digest"):
            if column in row.values:
                preferences[column] = self.check.flag(row, column)
        if "categories" in row.values:
            categories = split_multi(row.values["categories"]) or list(LABELS)
            for category in categories:
                if category not in LABELS:
                    self.check.fail(row, "categories", f"{category!r} is not one of {', '.join(LABELS)}")
            preferences["categories"] = categories
        return preferences

    def _scope(self, row: Row) -> tuple[Scope, str]:
        text = row.values["scope"]
        kind, _, code = text.partition(":")
        if kind == "org" and not code:
            return Scope.ORG, ""
        if kind == "practice" and code.upper() in self.ods_codes:
            return Scope.PRACTICE, code.upper()
        if kind == "doctor" and code in self.gmc_numbers:
            return Scope.DOCTOR, code
        if kind in {"practice", "doctor"} and code:
            self.check.fail(row, "scope", f"{kind} {code} is not in the register")
        else:
            self.check.fail(row, "scope", f"{text!r} is not org, practice:ODS_CODE or doctor:GMC_NUMBER")
        return Scope.ORG, ""

    def _write_practices(self, planned: _Planned) -> None:
        ods, fields = planned.key, planned.fields
        practice = self.practices.get(ods)
        if practice is None:
            tenant = Tenant(kind=TenantKind.PRACTICE, slug=ods.lower(), name=fields["name"])
            practice = Practice(ods_code=ods, tenant=tenant, **fields)
            self.session.add(practice)
            self.practices[ods] = practice
            self.report.counts[Kind.PRACTICES].created += 1
        else:
            self._update(Kind.PRACTICES, practice, fields)
            practice.tenant.name = practice.name

    def _write_doctors(self, planned: _Planned) -> None:
        gmc = planned.key
        fields = {**planned.fields, "practice": self.practices.get(planned.target)}
        doctor = self.doctors.get(gmc)
        if doctor is None:
            doctor = Doctor(gmc_number=gmc, **fields)
            self.session.add(doctor)
            self.doctors[gmc] = doctor
            self.report.counts[Kind.DOCTORS].created += 1
        else:
            self._update(Kind.DOCTORS, doctor, fields)

    def _write_recipients(self, planned: _Planned) -> None:
        target = self._target(planned.fields["scope"], planned.target)
        fields = {
            **planned.fields,
            "practice": target if isinstance(target, Practice) else None,
            "doctor": target if isinstance(target, Doctor) else None,
            "tenant": self._tenant_for(target),
        }
        recipient = self.recipients.get(planned.key)
        if recipient is None:
            self.session.add(Recipient(email=planned.key, **(recipient_defaults() | fields)))
            self.report.counts[Kind.RECIPIENTS].created += 1
        else:
            self._update(Kind.RECIPIENTS, recipient, fields)

    def _target(self, scope: Scope, code: str) -> Practice | Doctor | None:
        if scope is Scope.PRACTICE:
            return self.practices[code]
        if scope is Scope.DOCTOR:
            return self.doctors[code]
        return None

    def _tenant_for(self, target: Practice | Doctor | None) -> Tenant:
        if isinstance(target, Practice):
            return target.tenant
        if isinstance(target, Doctor) and target.practice is not None:
            return target.practice.tenant
        return organisation_tenant(self.session, self.organisation_name)

    def _update(self, kind: Kind, obj: Any, fields: dict[str, Any]) -> None:
        changed = False
        for name, value in fields.items():
            if getattr(obj, name) != value:
                setattr(obj, name, value)
                changed = True
        counts = self.report.counts[kind]
        if changed:
            counts.updated += 1
        else:
            counts.unchanged += 1


def organisation_tenant(session: Session, name: str) -> Tenant:
    """The defence organisation's tenant, created the first time it is needed."""
    tenant = session.scalar(select(Tenant).where(Tenant.slug == ORG_SLUG))
    if tenant is None:
        tenant = Tenant(kind=TenantKind.ORGANISATION, slug=ORG_SLUG, name=name)
        session.add(tenant)
    return tenant


def export_rows(session: Session, kind: Kind) -> Iterator[dict[str, str]]:
    """The register as CSV rows, in the same format the import reads."""
    if kind is Kind.PRACTICES:
        for p in session.scalars(select(Practice).order_by(Practice.ods_code)):
            yield {
                "ods_code": p.ods_code,
                "name": p.name,
                "town": p.town,
                "postcode": p.postcode,
                "handles": join_multi(p.handles),
                "website": p.website,
            }
    elif kind is Kind.DOCTORS:
        doctors = select(Doctor).options(selectinload(Doctor.practice))
        for d in session.scalars(doctors.order_by(Doctor.gmc_number)):
            yield {
                "gmc_number": d.gmc_number,
                "full_name": d.full_name,
                "aliases": join_multi(d.aliases),
                "handles": join_multi(d.handles),
                "practice_ods_code": d.practice.ods_code if d.practice else "",
                "specialty": d.specialty,
                "town": d.town,
            }
    else:
        query = (
            select(Recipient)
            .options(selectinload(Recipient.practice), selectinload(Recipient.doctor))
            .order_by(Recipient.email)
        )
        for r in session.scalars(query):
            yield {
                "email": r.email,
                "name": r.name,
                "scope": r.scope_text,
                "immediate_alerts": str(r.immediate_alerts).lower(),
                "digest": str(r.digest).lower(),
                "categories": join_multi(r.categories),
            }


def export_register(session: Session, directory: Path) -> list[Path]:
    """Write practices.csv, doctors.csv and recipients.csv into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for kind in Kind:
        path = directory / f"{kind}.csv"
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS[kind], lineterminator="\n")
            writer.writeheader()
            writer.writerows(export_rows(session, kind))
        written.append(path)
    return written


def register_counts(session: Session) -> Counter[str]:
    """How many of each thing the register holds (for ``vigil status``)."""
    from sqlalchemy import func

    counts: Counter[str] = Counter()
    for label, model in (
        ("tenants", Tenant),
        ("practices", Practice),
        ("doctors", Doctor),
        ("recipients", Recipient),
    ):
        counts[label] = session.scalar(select(func.count()).select_from(model)) or 0
    return counts
