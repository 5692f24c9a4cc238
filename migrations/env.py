"""Alembic environment: Vigil's models are the target; the URL and connection come from Vigil."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Connection

import vigil.models  # noqa: F401  (registers every table on Base.metadata)
from vigil.models.base import Base

# Tables that live in Vigil's database but belong to libraries, not to these migrations.
FOREIGN_TABLES = {"apscheduler_jobs"}


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    return not (type_ == "table" and name in FOREIGN_TABLES)


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        include_object=include_object,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is None:
    raise SystemExit("run migrations with `vigil db upgrade`, which passes Vigil's connection")
run_migrations(connection)
