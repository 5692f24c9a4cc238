"""What every command and job needs: the settings, read once, and the database engine."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from vigil import db
from vigil.settings import Settings, load_settings


class Runtime:
    """Settings and database for one process; the engine is created on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @classmethod
    def load(cls, config_file: Path | None = None) -> Runtime:
        return cls(load_settings(config_file))

    @cached_property
    def engine(self) -> Engine:
        return db.engine_from_settings(self.settings)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with db.transaction(self.engine) as session:
            yield session

    @contextmanager
    def read_only(self) -> Iterator[Session]:
        """For probes that only read (/healthz, /metrics): on SQLite they never wait for a writer."""
        with db.read_only(self.engine) as session:
            yield session

    def safe_database_url(self) -> str:
        return db.safe_url(db.database_url(self.settings))

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()
