from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from vigil.db import database_url, make_engine, read_only, safe_url
from vigil.models import Doctor
from vigil.settings import load_settings


def test_the_embedded_sqlite_database_uses_wal_and_foreign_keys(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/v.db")
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()


def test_a_read_only_session_on_sqlite_reads_while_another_connection_holds_the_write_lock(
    tmp_path: Path,
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/v.db")
    with engine.begin() as setup:
        setup.execute(text("CREATE TABLE t (n INTEGER)"))
        setup.execute(text("INSERT INTO t VALUES (1)"))
    with engine.begin() as writer:  # BEGIN IMMEDIATE: the write lock, until the block ends
        writer.execute(text("UPDATE t SET n = 2"))
        with read_only(engine) as session:
            assert session.execute(text("SELECT n FROM t")).scalar() == 1  # what is committed
    engine.dispose()


def test_foreign_keys_are_enforced(session: Session) -> None:
    session.add(Doctor(gmc_number="1234567", full_name="Dr X", practice_id=999, aliases=[], handles=[]))
    with pytest.raises(IntegrityError):
        session.flush()


def test_the_password_comes_from_its_own_secret_and_is_never_shown() -> None:
    settings = load_settings(
        environ={
            "VIGIL_DATABASE__URL": "postgresql://vigil@db.internal/vigil",
            "VIGIL_DATABASE__PASSWORD": "hunter2",
        }
    )
    url = database_url(settings)
    assert url.password == "hunter2" and url.drivername == "postgresql+psycopg"
    assert "hunter2" not in safe_url(url)


def test_a_database_error_never_carries_the_statements_values(tmp_path: Path) -> None:
    """A checkpoint holds a Bluesky session; posts and addresses are tenants' data: none of it may
    reach a log line or an operator event through an error message."""
    engine = make_engine(f"sqlite:///{tmp_path}/v.db")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (n INTEGER PRIMARY KEY, secret TEXT)"))
        connection.execute(text("INSERT INTO t VALUES (1, 'x')"))
    with pytest.raises(IntegrityError) as error, engine.begin() as connection:
        connection.execute(text("INSERT INTO t VALUES (1, :secret)"), {"secret": "REFRESH-TOKEN-abc"})
    assert "REFRESH-TOKEN-abc" not in str(error.value)
    engine.dispose()


def test_echo_logs_each_statement_to_the_log_and_nothing_to_standard_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """SQLAlchemy's own echo printed to standard output, into `vigil mentions export > file`."""
    logger = logging.getLogger("sqlalchemy.engine.Engine")
    level, handlers = logger.level, list(logger.handlers)
    try:
        engine = make_engine(f"sqlite:///{tmp_path / 'echo.db'}", echo=True)
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 4242")
        engine.dispose()
    finally:
        logger.setLevel(level)
        logger.handlers[:] = handlers
    assert capsys.readouterr().out == ""
    assert [r for r in caplog.records if r.name == logger.name and "SELECT 4242" in r.getMessage()]


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never answers: a frozen database server."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    listener.close()


def connect_parameters(url: str) -> dict[str, Any]:
    """What the engine would hand libpq, caught before any connection is made."""
    engine = make_engine(url)
    seen: dict[str, Any] = {}

    @event.listens_for(engine, "do_connect")
    def catch(dialect: Any, record: Any, cargs: Any, cparams: dict[str, Any]) -> None:
        seen.update(cparams)
        raise RuntimeError("caught")

    with pytest.raises(RuntimeError, match="caught"):
        engine.connect()
    engine.dispose()
    return seen


def test_a_postgresql_connection_gives_up_on_a_silent_server_and_notices_a_vanished_peer() -> None:
    seen = connect_parameters("postgresql+psycopg://vigil@db.example/vigil")
    assert seen["connect_timeout"] == 10 and seen["keepalives"] == 1 and seen["keepalives_idle"] == 60


def test_the_database_url_may_set_its_own_connection_timeout(silent_server: int) -> None:
    url = f"postgresql+psycopg://vigil@127.0.0.1:{silent_server}/vigil?connect_timeout=2"
    assert connect_parameters(url)["connect_timeout"] == "2"
    engine = make_engine(url)
    with pytest.raises(OperationalError):  # libpq gives up, rather than waiting for ever
        engine.connect()
    engine.dispose()
