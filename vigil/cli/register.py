"""``vigil register``: import and export the practices, doctors and recipients Vigil watches."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from vigil.cli.common import console, new_app, runtime
from vigil.errors import VigilError
from vigil.register import Kind, export_register, import_register

app = new_app("Import and export the register of practices, doctors and recipients.")


@app.command("import")
def import_(
    ctx: typer.Context,
    files: list[Path] = typer.Argument(..., help="CSV files: practices, doctors and/or recipients."),
) -> None:
    """Validate and upsert register CSV files; any error in any row imports nothing.

    Kinds are told apart by the header: practices (ods_code,name,town,postcode,handles,website),
    doctors (gmc_number,full_name,aliases,handles,practice_ods_code,specialty,town) and
    recipients (email,name,scope[,immediate_alerts,digest,categories]). A missing preference column
    leaves existing recipients' choices unchanged; new recipients get every alert and the digest.
    """
    rt = runtime(ctx)
    with rt.transaction() as session:
        report = import_register(session, files, rt.settings.organisation.name)
    table = Table("Kind", "Created", "Updated", "Unchanged", title="Register import")
    for kind in Kind:
        counts = report.counts[kind]
        table.add_row(str(kind), str(counts.created), str(counts.updated), str(counts.unchanged))
    console.print(table)


@app.command()
def export(
    ctx: typer.Context,
    directory: Path = typer.Argument(..., help="Folder to write practices.csv, doctors.csv, recipients.csv."),
) -> None:
    """Write the register as CSV files in the same format that import reads."""
    if directory.exists() and not directory.is_dir():
        raise VigilError(f"{directory} is a file: give a folder to write the three CSV files in")
    with runtime(ctx).transaction() as session:
        for path in export_register(session, directory):
            console.print(f"wrote {path}")
