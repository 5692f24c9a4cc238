"""``vigil config``: the effective settings, and the reference generated from their declarations."""

from __future__ import annotations

import typer
from rich.markup import escape
from rich.table import Table

from vigil.cli.common import console, new_app, runtime
from vigil.settings import display_value, reference_markdown

app = new_app("Show settings and their documentation.")


@app.command()
def show(ctx: typer.Context) -> None:
    """Print every setting's effective value and where it came from (secrets are masked)."""
    settings = runtime(ctx).settings
    table = Table("Setting", "Value", "From")
    for path, declaration in settings.declarations.items():
        value = display_value(declaration, settings.get(path))
        table.add_row(path, escape(value), settings.origins[path])
    console.print(table)


@app.command()
def reference(ctx: typer.Context) -> None:
    """Print the Markdown configuration reference (the README's table is generated from this)."""
    print(reference_markdown(runtime(ctx).settings.declarations), end="")
