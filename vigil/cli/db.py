"""``vigil db``: create and migrate the schema (migrations are the only way it changes)."""

from __future__ import annotations

import typer

from vigil import migrate
from vigil.cli.common import console, new_app, runtime

app = new_app("Create, migrate and check the database schema.")


@app.command()
def upgrade(ctx: typer.Context, revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Apply migrations up to REVISION (default: the latest)."""
    rt = runtime(ctx)
    migrate.upgrade(rt.engine, revision)
    console.print(f"Database {rt.safe_database_url()} is at {migrate.current_revision(rt.engine)}.")


@app.command()
def downgrade(
    ctx: typer.Context,
    revision: str = typer.Argument(..., help="Target revision, or 'base'."),
    forget_erasures: bool = typer.Option(
        False,
        "--forget-erasures",
        help="Below 0012, drop the list of posts erased on request even if it holds any"
        " (an older release stores them again when a source shows them).",
    ),
) -> None:
    """Undo migrations down to REVISION ('base' removes every table)."""
    rt = runtime(ctx)
    migrate.downgrade(rt.engine, revision, forget_erasures=forget_erasures)
    console.print(f"Database is at {migrate.current_revision(rt.engine) or 'base'}.")


@app.command()
def current(ctx: typer.Context) -> None:
    """Print the schema revision the database is at, and the latest one."""
    rt = runtime(ctx)
    console.print(f"current: {migrate.current_revision(rt.engine) or 'empty'}")
    console.print(f"latest:  {migrate.head_revision()}")
