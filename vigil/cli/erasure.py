"""``vigil mentions forget``: an erasure request, shown first and carried out only with ``--yes``."""

from __future__ import annotations

import getpass

import typer
from rich.markup import escape
from rich.table import Table

from vigil.cli.common import console, runtime
from vigil.erasure import ErasurePlan, Request, erase, plan_erasure
from vigil.models import utcnow
from vigil.retention import Retention


def forget(
    ctx: typer.Context,
    author: str = typer.Option("", "--author", help="The account's handle (with --source): all its posts."),
    source: str = typer.Option("", "--source", help="The source the account posts on (x, reddit, ...)."),
    url: str = typer.Option("", "--url", help="The post's address, however spelt (and its copies)."),
    ids: list[int] = typer.Option([], "--id", help="A mention's id (repeat for more)."),
    include_case_evidence: bool = typer.Option(
        False,
        "--include-case-evidence",
        help="Erase posts that are evidence in a case too (open, or closed within"
        " retention.case_evidence_days); by default they are listed and kept.",
    ),
    yes: bool = typer.Option(False, "--yes", help="Delete; without it, only show what would go."),
    by: str = typer.Option(
        "", "--by", help="Who is carrying out the request, for the record (default: your login)."
    ),
) -> None:
    """Erase one person's posts on request (UK GDPR Art. 17): by account, address or id.

    Shows how many posts would go, from which sources and when they were posted (never their
    text), and deletes them only with --yes. The erasure is recorded for the operator with counts
    and ids only. Emails already sent are not edited: they go after retention.outbox_days.
    """
    rt = runtime(ctx)
    retention = Retention.from_settings(rt.settings)
    request = Request(author=author, source=source, url=url, ids=tuple(ids))
    with rt.transaction() as session:
        plan = plan_erasure(session, request, utcnow() - retention.case_evidence, include_case_evidence)
    show_plan(plan)
    if not plan.matched:
        return
    if not plan.to_delete:
        console.print("Nothing to erase: every mention that matches is kept as case evidence.")
        return
    if not yes:
        console.print(f"Would erase {len(plan.to_delete)} mention(s). Nothing is deleted without --yes.")
        return
    report = erase(rt.engine, plan, actor=by.strip() or getpass.getuser())
    console.print(
        f"Erased {report.deleted} mention(s). Sent emails quoting them are not edited: they are"
        f" deleted {rt.settings.retention.outbox_days} days after they were queued (retention.outbox_days)."
    )


def show_plan(plan: ErasurePlan) -> None:
    if not plan.matched:
        console.print("No stored mention matches.")
        return
    table = Table("Source", "Mentions", "First posted (UTC)", "Last posted (UTC)", title_justify="left")
    table.title = f"{len(plan.matched)} mention(s) match"
    for row in plan.by_source:
        first, last = f"{row.first_posted:%Y-%m-%d}", f"{row.last_posted:%Y-%m-%d}"
        table.add_row(escape(row.source), str(row.posts), first, last)
    console.print(table)
    if not plan.evidence:
        return
    verb = "erased too (--include-case-evidence)" if plan.include_evidence else "kept"
    console.print(f"Case evidence, {verb}: {len(plan.evidence_ids)} mention(s)")
    for item in plan.evidence:
        state = f"closed {item.closed_at:%Y-%m-%d}" if item.closed_at else f"open, {item.status}"
        console.print(f"  mention {item.mention_id}: case {item.case_id} ({state})")
    if not plan.include_evidence:
        console.print("  (--include-case-evidence erases them too, if the case no longer needs them)")
