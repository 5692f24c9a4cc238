"""``vigil alerts`` and ``vigil digest``: immediate alerts, weekly digests and the email outbox."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import select

from vigil.cli.common import console, new_app, runtime
from vigil.errors import VigilError
from vigil.models import OutboxMessage, OutboxStatus, Recipient

app = new_app("Route classified mentions to immediate alerts, and deliver the email outbox.")
digest_app = new_app("Build, send and preview the weekly digests.")


@app.command()
def send(ctx: typer.Context) -> None:
    """One pass: route new classified mentions and operator events to email, then deliver the outbox."""
    from alerts.jobs import send_alerts

    result = send_alerts(runtime(ctx))
    routing = result.routing
    console.print(
        f"Routed {routing.routed} classified mentions: {routing.alerted} alerted,"
        f" {routing.emails} alert emails queued; {result.operator_events} operator events."
    )
    console.print(f"Outbox: {result.delivery}.")


@app.command()
def retry(
    ctx: typer.Context,
    ids: list[int] = typer.Argument(None, help="Outbox message numbers, as `vigil status` lists them."),
    all_failed: bool = typer.Option(False, "--all", help="Every permanently failed message."),
) -> None:
    """Queue permanently failed emails again (after fixing an address or the mail server)."""
    from alerts.outbox import requeue_failed

    if not ids and not all_failed:
        raise VigilError("name the messages to retry, or pass --all")
    with runtime(ctx).transaction() as session:
        if ids:  # a mistyped number must not read as "nothing to retry"
            failed = set(
                session.scalars(select(OutboxMessage.id).where(OutboxMessage.status == OutboxStatus.FAILED))
            )
            if unknown := sorted(set(ids) - failed):
                numbers = ", ".join(f"#{number}" for number in unknown)
                raise VigilError(
                    f"no permanently failed message {numbers} (`vigil status` lists them); none queued"
                )
        count = requeue_failed(session, ids or ())
    console.print(f"{count} messages queued again; `vigil alerts send` delivers them.")


@digest_app.command("send")
def digest_send(
    ctx: typer.Context,
    week: str = typer.Option("", "--week", help="A finished ISO week, e.g. 2026-W45; default: last week."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show who would get what; build and send nothing."),
) -> None:
    """Build the weekly digests (each recipient and week once, however often this runs) and send them."""
    from alerts.config import load_config
    from alerts.digest import build_digests
    from alerts.jobs import chosen_week
    from alerts.outbox import deliver

    rt = runtime(ctx)
    config = load_config(rt.settings)
    target = chosen_week(config, week)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"Digests for {target}", total=None)
        report = build_digests(
            rt.engine, config, target, dry_run=dry_run, progress=lambda n: progress.advance(task, n)
        )
    if dry_run:
        table = Table("Recipient", "Posts", "Digest", title=f"Digests for {target} (dry run: nothing built)")
        for email, total, quiet in report.planned:
            table.add_row(escape(email), str(total), "all quiet" if quiet else "full")
        console.print(table)
        console.print(f"{report.existing} already built, {report.quiet_skipped} quiet weeks skipped.")
        return
    console.print(f"Digests {report}.")
    console.print(f"Outbox: {deliver(rt.engine, config.email)}.")


@digest_app.command()
def preview(
    ctx: typer.Context,
    recipient: str = typer.Option(..., "--recipient", help="Email address of the recipient."),
    week: str = typer.Option("", "--week", help="ISO week, e.g. 2026-W45; default: last week."),
    output: Path = typer.Option(Path("digest-preview.html"), "--output", "-o", help="HTML file to write."),
) -> None:
    """Write one recipient's digest as an HTML file (chart embedded) to check it in a browser, and
    its CSV file of the week's posts beside it."""
    from alerts.config import load_config
    from alerts.digest import preview_html
    from alerts.jobs import last_complete_week
    from alerts.weeks import Week

    rt = runtime(ctx)
    config = load_config(rt.settings)
    target = Week.parse(week) if week else last_complete_week(config)
    with rt.transaction() as session:
        found = session.scalar(select(Recipient).where(Recipient.email == recipient.strip().lower()))
        if found is None:
            raise VigilError(f"no recipient with the email address {recipient!r} in the register")
        html, attachment = preview_html(session, config, found, target)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(html, encoding="utf-8")
    console.print(f"Wrote the {target} digest for {escape(found.email)} to {escape(str(output))}.")
    if attachment is not None:
        attached = output.with_name(attachment.filename)
        attached.write_bytes(attachment.data)
        console.print(f"Wrote its attached file to {escape(str(attached))}.")
