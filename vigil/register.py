"""Register import and export: practices, doctors and recipients as CSV, validated all-or-nothing.

Three CSV kinds are told apart by their header:

* practices: ``ods_code,name,town,postcode,handles,website``
* doctors: ``gmc_number,full_name,aliases,handles,practice_ods_code,specialty,town``
* recipients: ``email,name,scope`` and optionally ``immediate_alerts,digest,categories``

Multi-valued fields are ``;``-separated. Any error in any row of any file imports nothing.
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
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [column.strip() for column in reader.fieldnames or []]
    kind = detect_kind(header)
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
    reader.fieldnames = header
    rows = []
    for values in reader:
        if None in values:
            errors.append(RowError(name, reader.line_num, "", "more fields than the header has"))
            continue
        cleaned = {key: (value or "").strip() for key, value in values.items()}
        if any(cleaned.values()):
            rows.append(Row(name, reader.line_num, cleaned))
    return CsvFile(path, kind, rows)


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

    def unique(self, rows: list[Row], column: str) -> None:
        seen: dict[str, int] = {}
        for row in rows:
            key = row.values.get(column, "").upper()
            if key and key in seen:
                self.fail(row, column, f"{key} appears twice in this file (also line {seen[key]})")
            seen.setdefault(key, row.line)


def import_register(session: Session, paths: Iterable[Path], organisation_name: str) -> ImportReport:
    """Validate every row of every file, then upsert them all; any error imports nothing."""
    errors: list[RowError] = []
    files = [csv_file for path in paths if (csv_file := read_csv(Path(path), errors))]
    order = list(Kind)
    files.sort(key=lambda csv_file: order.index(csv_file.kind))
    report = ImportReport()
    importer = _Importer(session, errors, organisation_name, report)
    for csv_file in files:
        importer.import_file(csv_file)
    if errors:
        session.rollback()
        raise RegisterImportError(errors)
    session.flush()
    return report


class _Importer:
    def __init__(
        self, session: Session, errors: list[RowError], organisation_name: str, report: ImportReport
    ) -> None:
        self.session = session
        self.check = _Validator(errors)
        self.organisation_name = organisation_name
        self.report = report
        self.practices = {p.ods_code: p for p in session.scalars(select(Practice))}
        self.doctors = {d.gmc_number: d for d in session.scalars(select(Doctor))}

    def import_file(self, csv_file: CsvFile) -> None:
        key = {Kind.PRACTICES: "ods_code", Kind.DOCTORS: "gmc_number", Kind.RECIPIENTS: "email"}
        self.check.unique(csv_file.rows, key[csv_file.kind])
        handler: Callable[[Row], None] = getattr(self, f"_{csv_file.kind}")
        for row in csv_file.rows:
            handler(row)

    def _practices(self, row: Row) -> None:
        row.values["ods_code"] = row.values["ods_code"].upper()
        row.values["postcode"] = row.values["postcode"].upper()
        ods = self.check.matching(row, "ods_code", ODS_CODE, "an ODS code (a letter and 5 digits)")
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

    def _doctors(self, row: Row) -> None:
        gmc = self.check.matching(row, "gmc_number", GMC_NUMBER, "a GMC number (7 digits)")
        ods = row.values["practice_ods_code"].upper()
        practice = self.practices.get(ods) if ods else None
        if ods and practice is None:
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
            "practice": practice,
        }
        doctor = self.doctors.get(gmc)
        if doctor is None:
            doctor = Doctor(gmc_number=gmc, **fields)
            self.session.add(doctor)
            self.doctors[gmc] = doctor
            self.report.counts[Kind.DOCTORS].created += 1
        else:
            self._update(Kind.DOCTORS, doctor, fields)

    def _recipients(self, row: Row) -> None:
        email = row.values["email"].lower()
        if not EMAIL.match(email) or len(email) > 320:
            self.check.fail(row, "email", f"{row.values['email']!r} is not an email address")
        scope, target = self._scope(row)
        categories = split_multi(row.values.get("categories", "")) or list(LABELS)
        for category in categories:
            if category not in LABELS:
                self.check.fail(row, "categories", f"{category!r} is not one of {', '.join(LABELS)}")
        fields: dict[str, Any] = {
            "name": self.check.text(row, "name"),
            "scope": scope,
            "practice": target if isinstance(target, Practice) else None,
            "doctor": target if isinstance(target, Doctor) else None,
            "tenant": self._tenant_for(target),
            "immediate_alerts": self.check.flag(row, "immediate_alerts"),
            "digest": self.check.flag(row, "digest"),
            "categories": categories,
        }
        recipient = self.session.scalar(select(Recipient).where(Recipient.email == email))
        if recipient is None:
            self.session.add(Recipient(email=email, **fields))
            self.report.counts[Kind.RECIPIENTS].created += 1
        else:
            self._update(Kind.RECIPIENTS, recipient, fields)

    def _scope(self, row: Row) -> tuple[Scope, Practice | Doctor | None]:
        text = row.values["scope"]
        kind, _, code = text.partition(":")
        if kind == "org" and not code:
            return Scope.ORG, None
        if kind == "practice" and code.upper() in self.practices:
            return Scope.PRACTICE, self.practices[code.upper()]
        if kind == "doctor" and code in self.doctors:
            return Scope.DOCTOR, self.doctors[code]
        if kind in {"practice", "doctor"} and code:
            self.check.fail(row, "scope", f"{kind} {code} is not in the register")
        else:
            self.check.fail(row, "scope", f"{text!r} is not org, practice:ODS_CODE or doctor:GMC_NUMBER")
        return Scope.ORG, None

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
