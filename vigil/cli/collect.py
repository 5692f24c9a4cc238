"""``vigil collect``, ``vigil mentions`` and ``vigil run``: collecting, exporting and scheduling."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table
from sqlalchemy import select

from vigil.cli.common import console, err_console, new_app, runtime
from vigil.errors import VigilError
from vigil.models import Recipient

app = new_app("Collect public posts from the configured sources, or import them from a file.")
mentions_app = new_app(
    "Export stored mentions, correct their labels, or erase one person's posts on request."
)


@app.callback(invoke_without_command=True)
def collect(
    ctx: typer.Context,
    once: bool = typer.Option(
        False, "--once", help="Poll each enabled source until it has nothing new, then exit."
    ),
    source: str | None = typer.Option(
        None, "--source", "-s", help="Poll only this source (x, bluesky, ...)."
    ),
) -> None:
    """Poll sources once (``--once``); ``vigil run`` polls them on their schedules."""
    if ctx.invoked_subcommand is not None:
        return
    if not once:
        raise VigilError("say --once to poll now (or use `vigil run` to poll on a schedule)")
    from collector.run import collect_once

    reports = collect_once(runtime(ctx), source)
    if not reports:
        console.print("No source is enabled: set sources.<name>.enabled (see docs/collector.md).")
        return
    table = Table("Source", "Batches", "Read", "Stored", "Already stored", "Naming no one", "Outcome")
    for report in reports:
        outcome = escape(report.skipped) if report.skipped else ("[red]failed[/]" if report.error else "ok")
        store = report.store
        table.add_row(
            report.source, str(report.batches), str(report.posts_read), str(store.stored),
            str(store.duplicates), str(store.unmatched), outcome,
        )  # fmt: skip
    console.print(table)
    failed = [report for report in reports if report.error]
    for report in failed:
        err_console.print(f"[bold red]{report.source} failed:[/] {escape(report.error or '')}")
    if failed:
        raise typer.Exit(1)


@app.command("import")
def import_(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="A JSONL or CSV file (the format `vigil mentions export` writes)."),
) -> None:
    """Import posts from a file: validated whole, matched like collected posts; any error imports nothing.

    Fields: source, external_id, url, author, created_at (ISO 8601 with a time zone), text.
    Other fields are ignored. Posts naming no registered doctor or practice are not stored.
    """
    from collector.sources.files import import_posts

    rt = runtime(ctx)
    with rt.transaction() as session:
        report = import_posts(session, rt.settings, file)
    store = report.store
    erased = f", {store.erased} erased on request (not stored again)" if store.erased else ""
    console.print(
        f"{report.read} post(s) read: {store.stored} stored, {store.duplicates} already stored, "
        f"{store.unmatched} naming no registered doctor or practice{erased}."
    )


@mentions_app.command("export")
def export(
    ctx: typer.Context,
    fmt: str = typer.Option("jsonl", "--format", "-f", help="jsonl or csv."),
    since: datetime | None = typer.Option(
        None,
        "--since",
        formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"],
        help="Only mentions posted from this date (UTC).",
    ),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="File to write (default: standard output)."
    ),
    recipient: str | None = typer.Option(
        None,
        "--recipient",
        help="Only what this recipient (by email) may see: a practice's recipient that practice and its"
        " doctors, a doctor's only that doctor, the organisation's everything.",
    ),
) -> None:
    """Write stored mentions with their entities, matched text and labels (JSONL or CSV)."""
    from collector.export import export_mentions

    if fmt not in {"jsonl", "csv"}:
        raise VigilError(f"--format must be jsonl or csv, not {fmt!r}")
    with runtime(ctx).transaction() as session:
        reader = None
        if recipient is not None:
            reader = session.scalar(select(Recipient).where(Recipient.email == recipient.lower()))
            if reader is None:
                raise VigilError(f"no recipient {recipient} in the register")
        target = output.open("w", encoding="utf-8", newline="") if output else nullcontext(sys.stdout)
        with target as out:
            count = export_mentions(
                session, out, fmt, since=since.replace(tzinfo=UTC) if since else None, recipient=reader
            )
    if output is not None:
        err_console.print(f"wrote {count} mention(s) to {output}")


def run(ctx: typer.Context) -> None:
    """Run Vigil as a service until SIGTERM or Ctrl-C (it stops after the current batch).

    Polls every enabled source on its interval; every minute classifies new mentions, detects
    emerging cases and sends alerts; sends the weekly digests when due; every day deletes what is
    past retention (retention.*). Serves /healthz and Prometheus /metrics on
    service.listen_host:service.port. Run one per database.
    """
    from vigil import migrate, scheduler
    from vigil.retention import check_retention
    from vigil.service import check_start

    rt = runtime(ctx)
    check_start(rt.settings)
    check_retention(rt.settings)
    migrate.require_current(rt)
    scheduler.run(rt)
