"""The ``vigil`` command line."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from alerts.render import clean
from vigil import migrate
from vigil.cli import alerts, cases, collect, config, db, erasure, model, register, review
from vigil.cli.common import console, new_app, runtime
from vigil.cli.demo import demo
from vigil.logs import configure_logging
from vigil.status import collect_status

app = new_app("Vigil: social listening that protects doctors and GP practices from online abuse and threats.")
app.add_typer(db.app, name="db")
app.add_typer(register.app, name="register")
app.add_typer(config.app, name="config")
app.add_typer(collect.app, name="collect")
app.add_typer(collect.mentions_app, name="mentions")
collect.mentions_app.command("forget")(erasure.forget)
collect.mentions_app.command("label")(review.label)
app.add_typer(model.app, name="model")
model.app.command("corrections")(review.corrections)
app.command()(model.classify)
app.add_typer(alerts.app, name="alerts")
app.add_typer(alerts.digest_app, name="digest")
app.add_typer(cases.app, name="cases")
app.command("run")(collect.run)
app.command("demo")(demo)


@app.callback()
def root(
    ctx: typer.Context,
    config_file: Path | None = typer.Option(
        None,
        "--config",
        "-c",
        envvar="VIGIL_CONFIG",
        help="Settings file overriding config/default.toml.",
        exists=True,
        dir_okay=False,
    ),
) -> None:
    """Vigil watches public posts about registered doctors and practices and alerts the right people."""
    configure_logging(runtime(ctx).settings)


@app.command()
def status(ctx: typer.Context) -> None:
    """Show the database, the register and the state of every pipeline step (exit 1 if the
    schema is missing or out of date, so that scripts notice)."""
    rt = runtime(ctx)
    migrate.require_database(rt)
    for title, rows in collect_status(rt):
        table = Table(title=title, show_header=False, title_justify="left")
        for label, value in rows:
            table.add_row(label, escape(clean(value, single_line=True)))  # remote errors: inert
        console.print(table)
    if not migrate.schema_is_current(rt.engine):
        raise typer.Exit(1)


def main() -> None:
    app()
