"""What every command shares: the runtime built from ``--config``, consoles, and error handling."""

from __future__ import annotations

import io
import os
import sys
from typing import Any

import typer
from alembic.util import CommandError
from rich.console import Console
from rich.markup import escape
from sqlalchemy.exc import OperationalError, ProgrammingError
from typer.core import TyperGroup

from vigil.errors import VigilError
from vigil.runtime import Runtime

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


SIGPIPE_STATUS = 141  # as a shell reports a command that a closed pipe stopped: 128 + SIGPIPE


def _drop_stdout() -> None:
    """Point standard output at /dev/null, so that flushing it at exit raises no second error."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):  # no real file (a test's capture)
        pass


def fail(message: str, exit_code: int = 1) -> typer.Exit:
    """Print one ``error: ...`` line; return the Exit to raise with a non-zero status."""
    err_console.print(f"[bold red]error:[/] {escape(message)}")
    return typer.Exit(exit_code)


class VigilGroup(TyperGroup):
    """Turns Vigil's expected errors into one clear line instead of a traceback."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except VigilError as exc:
            raise fail(str(exc), exc.exit_code) from exc
        except (OperationalError, ProgrammingError) as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            missing_table = "no such table" in reason or ("relation" in reason and "does not exist" in reason)
            hint = _schema_hint(ctx, missing_table)
            if isinstance(exc, ProgrammingError) and not hint:
                raise  # a bug, not the database's state (a stale schema's missing column gets the hint)
            raise fail(f"database error: {reason}{hint}") from exc
        except CommandError as exc:  # alembic: an unknown revision
            raise fail(f"migrations: {exc}") from exc
        except BrokenPipeError:  # `vigil mentions export | head`: the reader has all it wanted
            _drop_stdout()
            raise typer.Exit(SIGPIPE_STATUS) from None
        except OSError as exc:  # a path that is a folder, missing or not writable; a port in use
            raise fail(f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc)) from exc


def _schema_hint(ctx: Any, missing_table: bool) -> str:
    """A hint for a database error on a schema missing or older than the code (a table or a
    column that a later migration adds)."""
    from vigil import migrate

    no_schema = " (the database has no schema yet: run `vigil db upgrade`)"
    rt = ctx.find_root().obj
    try:
        current, head = migrate.current_revision(rt.engine), migrate.head_revision()
    except Exception:  # no runtime, or the database is unreachable: only the error itself to go on
        return no_schema if missing_table else ""
    if current == head:
        return ""
    if current is None:
        return no_schema
    needs = f"this version of Vigil needs {head}"
    return f" (the database is at schema {current}, {needs}: run `vigil db upgrade`)"


def new_app(help_text: str) -> typer.Typer:
    return typer.Typer(
        cls=VigilGroup,
        help=help_text,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
        rich_markup_mode="rich",
    )


def runtime(ctx: typer.Context) -> Runtime:
    """The runtime of this invocation, loaded once from the options of the top-level command."""
    root = ctx.find_root()
    if not isinstance(root.obj, Runtime):
        root.obj = Runtime.load(root.params.get("config_file"))
        root.call_on_close(root.obj.close)
    return root.obj
