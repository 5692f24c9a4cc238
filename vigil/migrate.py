"""Schema changes, only ever through Alembic migrations (``vigil db upgrade``)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from vigil.paths import resource_dir


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(resource_dir("migrations")))
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    config.set_main_option("truncate_slug_length", "30")
    return config


def _run(engine: Engine, action: str, *args: object, **kwargs: object) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        getattr(command, action)(config, *args, **kwargs)


def upgrade(engine: Engine, revision: str = "head") -> None:
    _run(engine, "upgrade", revision)


def downgrade(engine: Engine, revision: str) -> None:
    _run(engine, "downgrade", revision)


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
