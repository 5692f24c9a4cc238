"""Shared fixtures: a migrated database on every configured backend, and named tenants.

The database tests run on SQLite always and on PostgreSQL whenever VIGIL_TEST_DATABASE_URL is
set (CI sets it). Each test run gets its own PostgreSQL schema, so parallel runs never collide.

Named tenants: ``alice`` and ``bob`` are practices, ``charlie`` an outsider practice that no
one else may ever see, and ``org`` the defence organisation.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from vigil import migrate
from vigil.db import make_engine
from vigil.logs import HANDLER_NAME
from vigil.models import Base, Doctor, Practice, Recipient, Scope, Tenant, TenantKind
from vigil.register import organisation_tenant
from vigil.settings import Settings, load_settings

PG_ENV = "VIGIL_TEST_DATABASE_URL"
BACKENDS = ["sqlite", "postgresql"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "backend" in getattr(item, "fixturenames", ()) and "[postgresql" in item.nodeid:
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(autouse=True)
def _vigil_logging_ends_with_the_test() -> Iterator[None]:
    """A `vigil` command points the root logger at the test's stderr, which pytest then closes;
    a server thread logging later (aiosmtpd at shutdown) would hit a closed file."""
    root = logging.getLogger()
    level = root.level
    yield
    root.handlers[:] = [handler for handler in root.handlers if handler.get_name() != HANDLER_NAME]
    root.setLevel(level)


@pytest.fixture(scope="session")
def pg_schema_url() -> Iterator[str]:
    """A fresh PostgreSQL schema for this test run, as a URL whose connections use it."""
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"PostgreSQL tests need {PG_ENV} (e.g. postgresql+psycopg://postgres@127.0.0.1/test)")
    schema = f"vigil_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # the server named by the environment does not answer
        pytest.skip(f"PostgreSQL at {make_url(base).render_as_string()} is not reachable: {exc}")
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    yield url.render_as_string(hide_password=False)
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (faster than migrating every time)."""
    path = tmp_path_factory.mktemp("template") / "vigil.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_migrated(pg_schema_url: str) -> str:
    engine = make_engine(pg_schema_url)
    migrate.upgrade(engine)
    engine.dispose()
    return pg_schema_url


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a migrated, empty database on this test's backend."""
    if backend == "sqlite":
        path = tmp_path / "vigil.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    url = request.getfixturevalue("pg_migrated")
    yield url
    engine = make_engine(url)
    with engine.begin() as connection:
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return load_settings(environ={"VIGIL_DATABASE__URL": database_url})


@pytest.fixture
def env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point Vigil commands run in this test at the test database."""
    for name in list(os.environ):
        if name.startswith("VIGIL_") and "__" in name:
            monkeypatch.delenv(name)
    monkeypatch.setenv("VIGIL_DATABASE__URL", database_url)
    return {"VIGIL_DATABASE__URL": database_url}


@dataclass
class Tenancy:
    """A tenant with its practice, doctors and the recipient who reads its alerts."""

    tenant: Tenant
    practice: Practice | None = None
    doctors: list[Doctor] = field(default_factory=list)
    recipient: Recipient | None = None


def make_practice_tenant(
    session: Session, ods: str, name: str, town: str, doctors: list[tuple[str, str]]
) -> Tenancy:
    tenant = Tenant(kind=TenantKind.PRACTICE, slug=ods.lower(), name=name)
    practice = Practice(tenant=tenant, ods_code=ods, name=name, town=town, handles=[])
    made = [
        Doctor(
            gmc_number=gmc,
            full_name=full_name,
            practice=practice,
            town=town,
            aliases=[],
            handles=[],
        )
        for gmc, full_name in doctors
    ]
    recipient = Recipient(
        email=f"manager@{ods.lower()}.example",
        name=f"Manager of {name}",
        scope=Scope.PRACTICE,
        tenant=tenant,
        practice=practice,
    )
    session.add_all([tenant, practice, *made, recipient])
    session.commit()
    return Tenancy(tenant, practice, made, recipient)


def add_colleague(session: Session, tenancy: Tenancy, gmc: str, full_name: str) -> Doctor:
    """Another doctor at the tenancy's practice, registered after its first."""
    assert tenancy.practice is not None
    doctor = Doctor(gmc_number=gmc, full_name=full_name, practice=tenancy.practice,
                    town=tenancy.practice.town, aliases=[], handles=[])  # fmt: skip
    session.add(doctor)
    session.commit()
    return doctor


@pytest.fixture
def alice(session: Session) -> Tenancy:
    return make_practice_tenant(
        session, "A10001", "Alice Road Surgery", "Leeds", [("1000001", "Amira Hassan")]
    )


@pytest.fixture
def bob(session: Session) -> Tenancy:
    return make_practice_tenant(
        session, "B20002", "Bob Lane Practice", "Bristol", [("2000002", "Benedict Osei")]
    )


@pytest.fixture
def charlie(session: Session) -> Tenancy:
    return make_practice_tenant(
        session, "C30003", "Charlie Street Health Centre", "Carlisle", [("3000003", "Carys Morgan")]
    )


@pytest.fixture
def org(session: Session) -> Tenancy:
    tenant = organisation_tenant(session, "Medical Defence Organisation")
    recipient = Recipient(email="cases@mdo.example", name="Case team", scope=Scope.ORG, tenant=tenant)
    session.add(recipient)
    session.commit()
    return Tenancy(tenant, recipient=recipient)
