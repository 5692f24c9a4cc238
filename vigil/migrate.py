"""Schema changes, only ever through Alembic migrations (``vigil db upgrade``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine
from sqlalchemy.engine import make_url

from vigil.errors import VigilError
from vigil.paths import resource_dir
from vigil.runtime import Runtime

# Set by ``vigil db downgrade --forget-erasures``; read by migration 0012's downgrade.
FORGET_ERASURES = "forget_erasures"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(resource_dir("migrations")))
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    config.set_main_option("truncate_slug_length", "30")
    return config


def _run(
    engine: Engine, action: str, *args: object, attributes: dict[str, object] | None = None, **kwargs: object
) -> None:
    config = alembic_config()
    config.attributes.update(attributes or {})
    with engine.connect() as connection, _sqlite_foreign_keys_off(connection), connection.begin():
        config.attributes["connection"] = connection
        getattr(command, action)(config, *args, **kwargs)
        _check_foreign_keys(connection)


@contextmanager
def _sqlite_foreign_keys_off(connection: Connection) -> Iterator[None]:
    """On SQLite a migration alters a table by copying it and dropping the old one; with foreign
    keys enforced, that drop would delete every row pointing at the table (ON DELETE CASCADE).
    The pragma only works outside a transaction, so it goes straight to the driver."""
    if connection.dialect.name != "sqlite":
        yield
        return
    driver = connection.connection.driver_connection
    assert driver is not None
    driver.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
    finally:
        driver.execute("PRAGMA foreign_keys=ON")


def _check_foreign_keys(connection: Connection) -> None:
    """With enforcement off, check by hand that the migration left no dangling reference."""
    if connection.dialect.name == "sqlite":
        dangling = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
        if dangling:
            raise VigilError(f"the migration would leave rows pointing at nothing: {dangling[:5]}")


def upgrade(engine: Engine, revision: str = "head") -> None:
    _run(engine, "upgrade", revision)


def downgrade(engine: Engine, revision: str, *, forget_erasures: bool = False) -> None:
    """Undo migrations down to ``revision``. Below 0012 there is no list of posts erased on request,
    so the downgrade refuses to drop a list that holds any unless ``forget_erasures``: an older
    release would store those posts again, and upgrading again would not bring the list back."""
    _run(engine, "downgrade", revision, attributes={FORGET_ERASURES: forget_erasures})


def check(engine: Engine) -> None:
    """Raise if the models and the migrations disagree (alembic's ``check``)."""
    _run(engine, "check")


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def script_directory() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str | None:
    return script_directory().get_current_head()


def autogenerate(engine: Engine, message: str, rev_id: str) -> None:
    """Write a new migration from the difference between the models and the database (developers)."""
    _run(engine, "revision", message=message, autogenerate=True, rev_id=rev_id)


def schema_is_current(engine: Engine) -> bool:
    """Whether the database is at the newest migration: the schema this code was written for."""
    return current_revision(engine) == head_revision()


def require_database(runtime: Runtime) -> None:
    """Stop a command that needs Vigil's tables, before it touches the database, if there is no
    SQLite file at the configured path: opening it would create an empty one, so a typo in the
    path would pass for a new, empty Vigil."""
    url = make_url(runtime.settings.database.url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return
    path = Path(url.database)
    if not path.exists():
        raise VigilError(
            f"no database at {path.resolve()} (setting database.url):"
            " check the path, or run `vigil db upgrade` to create it"
        )


def require_current(runtime: Runtime) -> None:
    """Stop ``vigil run`` at start-up unless the schema is exactly the one this code needs: on any
    other, every job would fail at its first query, and keep failing."""
    require_database(runtime)
    current, head = current_revision(runtime.engine), head_revision()
    if current != head:
        raise VigilError(
            f"the database {runtime.safe_database_url()} is at schema {current or 'empty'}, and this"
            f" version of Vigil needs {head}: run `vigil db upgrade` first"
        )
