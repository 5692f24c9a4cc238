from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from vigil import migrate
from vigil.db import make_engine
from vigil.models import Base


@pytest.fixture
def empty_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    url = request.getfixturevalue("pg_schema_url")
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(text(f'DROP TABLE IF EXISTS "{table.name}" CASCADE'))
    engine.dispose()
    return url


def test_migrations_build_the_models_schema_and_undo_it(empty_url: str) -> None:
    engine = make_engine(empty_url)
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()
    migrate.check(engine)  # raises if the models and the migrations disagree
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    migrate.downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()


def test_each_migration_downgrades_to_its_parent_and_back(empty_url: str) -> None:
    engine = make_engine(empty_url)
    migrate.upgrade(engine)
    revisions = [r.revision for r in migrate.script_directory().walk_revisions()]
    for _ in revisions:
        migrate.downgrade(engine, "-1")
    assert migrate.current_revision(engine) is None
    migrate.upgrade(engine)
    migrate.check(engine)
    engine.dispose()
