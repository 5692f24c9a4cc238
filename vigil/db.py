"""Database engine and sessions: the embedded SQLite default, or PostgreSQL by URL."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

from vigil.settings import Settings


def database_url(settings: Settings) -> URL:
    """The configured URL, with the password from the environment and the psycopg driver."""
    url = make_url(settings.database.url)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    if settings.database.password:
        url = url.set(password=settings.database.password.get())
    return url


def safe_url(url: URL | str) -> str:
    """The URL as it may be shown to people and logs: never with its password."""
    return make_url(url).render_as_string(hide_password=True)


def make_engine(url: URL | str, echo: bool = False) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and a busy timeout so that workers can share it.

    Statement parameters are never put in error messages or logs (``hide_parameters``): they
    hold post text, addresses and sources' checkpoints, which may hold session tokens.

    ``echo`` logs every statement through Vigil's log (standard error, in log.format), not through
    the handler SQLAlchemy's own ``echo`` adds, which writes to standard output: there its lines
    ran into ``vigil mentions export`` and ``--json`` output, and doubled the log's."""
    url = make_url(url)
    if echo:
        logging.getLogger("sqlalchemy.engine.Engine").setLevel(logging.INFO)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    connect_args = {name: value for name, value in POSTGRESQL_CONNECT.items() if name not in url.query}
    return create_engine(
        url, hide_parameters=True, pool_pre_ping=True, future=True, connect_args=connect_args
    )


# libpq's defaults wait for ever on a server that accepts connections and never answers, and on a
# connection whose peer vanished without a reset (a failed-over host, a dropped NAT mapping): every
# job would hang. A parameter in the database URL (``?connect_timeout=30``) wins over these.
POSTGRESQL_CONNECT = {
    "connect_timeout": 10,
    "keepalives": 1,
    "keepalives_idle": 60,
    "keepalives_interval": 10,
    "keepalives_count": 5,
}


def _sqlite_engine(url: URL) -> Engine:
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, hide_parameters=True, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy issue BEGIN itself, so that BEGIN IMMEDIATE below takes the write lock.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        if url.database and url.database != ":memory:":
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Every transaction takes the write lock up front: no lock upgrades, so no
        # "database is locked" failures between two workers that both read then write.
        # Read-only probes (/healthz, /metrics) take no lock: in WAL mode readers never wait.
        read_only = connection.get_execution_options().get("vigil_read_only")
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def engine_from_settings(settings: Settings) -> Engine:
    return make_engine(database_url(settings), echo=settings.database.echo)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """One unit of work: committed when the block ends, rolled back if it raises."""
    with session_factory(engine)() as session, session.begin():
        yield session


@contextmanager
def read_only(engine: Engine) -> Iterator[Session]:
    """A session that only reads: on SQLite it takes no write lock, so it never waits for a job's
    write (in WAL mode readers and one writer go side by side)."""
    with engine.connect() as connection:
        connection.execution_options(vigil_read_only=True)
        with Session(bind=connection, expire_on_commit=False) as session, session.begin():
            yield session
