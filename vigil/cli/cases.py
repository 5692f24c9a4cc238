"""``vigil cases``: detect emerging cases, list and read them, and move them through triage."""

from __future__ import annotations

import getpass
import json
from typing import Any

import typer
from rich.progress import Progress
from rich.table import Table
from rich.text import Text

from vigil.cli.common import console, new_app, runtime
from vigil.errors import VigilError
from vigil.models import CaseStatus
from vigil.models.cases import OPEN_STATUSES, CaseReason

app = new_app("Emerging cases for the defence organisation: detect, list, show and triage them.")

STATUS_CHOICES = [*(s.value for s in CaseStatus), "open", "all"]
UPDATE_CHOICES = ("triaged", "escalated", "closed")


def safe(value: object) -> Text:
    """Scraped text for the terminal: control and bidi characters removed, never read as markup."""
    from alerts.render import clean

    return Text(clean(value))


def print_json(data: Any) -> None:
    # ensure_ascii: every non-ASCII character escaped, so nothing scraped can drive the terminal.
    typer.echo(json.dumps(data, indent=2))


@app.command()
def detect(ctx: typer.Context) -> None:
    """One detection pass over newly classified mentions (`vigil run` schedules it); emails new cases."""
    from cases.detect import pending_count
    from cases.jobs import detect as run_detection

    rt = runtime(ctx)
    with rt.transaction() as session:
        pending = pending_count(session)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("Scanning classified mentions", total=pending or None)
        report = run_detection(rt, progress=lambda n: progress.advance(task, n))
    console.print(f"Detection: {report}.")
    for case_id in report.opened:
        console.print(f"  opened case #{case_id}: `vigil cases show {case_id}`")


@app.command("list")
def list_(
    ctx: typer.Context,
    status: str = typer.Option("open", "--status", help=f"One of {', '.join(STATUS_CHOICES)}."),
    reason: str = typer.Option("", "--reason", help="Only this reason: spike, pile-on, threat or campaign."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List cases, most severe first, then newest (open ones by default)."""
    from alerts.render import percent
    from cases.views import REASON_TITLES, case_summaries, load_cases

    statuses = parse_statuses(status)
    rt = runtime(ctx)
    with rt.transaction() as session:
        rows = case_summaries(session, load_cases(session, statuses, parse_reason(reason)))
    if as_json:
        print_json(rows)
        return
    table = Table("#", "Opened", "Case", title="Cases, most severe first")
    for row in rows:
        posts = f"{row['mentions']} {'post' if row['mentions'] == 1 else 'posts'}"
        facts = [REASON_TITLES[row["reason"]], row["severity"], row["status"], posts]
        if row["top_threat_score"] is not None:
            facts.append(f"threat score up to {percent(row['top_threat_score'])}")
        if row["assignee"]:
            facts.insert(3, row["assignee"])
        if row["last_evidence_at"] != row["opened_at"]:  # it has grown since the opening email
            facts.append(f"new evidence {local(rt, row['last_evidence_at'])}")
        table.add_row(
            str(row["id"]),
            local(rt, row["opened_at"]).replace(" ", "\n", 1),
            safe(row["title"] + "\n" + " · ".join(facts)),
        )
    console.print(table if rows else f"No {status} cases.")  # not an empty table above it


def parse_reason(reason: str) -> str | None:
    """``pile-on`` as the emails and ``status`` write it, or ``pile_on`` as the JSON does."""
    if not reason:
        return None
    value = reason.strip().lower().replace("-", "_")
    if value not in {r.value for r in CaseReason}:
        raise VigilError(f"--reason {reason!r}: expected one of spike, pile-on, threat, campaign")
    return value


def local(rt: Any, moment: str) -> str:
    """An ISO time from the JSON on the organisation's clock, as the emails give it, with the
    zone: ``2026-07-07 18:29 BST``."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from vigil.clock import sortable_time

    when = datetime.fromisoformat(moment)
    when = when if when.tzinfo else when.replace(tzinfo=UTC)  # stored times are UTC
    return sortable_time(when, ZoneInfo(rt.settings.digest.timezone))


def parse_statuses(status: str) -> list[CaseStatus]:
    if status == "open":
        return list(OPEN_STATUSES)
    if status == "all":
        return list(CaseStatus)
    try:
        return [CaseStatus(status)]
    except ValueError:
        raise VigilError(f"--status {status!r}: expected one of {', '.join(STATUS_CHOICES)}") from None


@app.command()
def show(
    ctx: typer.Context,
    case_id: int = typer.Argument(..., metavar="ID", help="Case number."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
) -> None:
    """A case in full: its figures, members, every post of evidence and its history."""
    from alerts.render import percent
    from cases.views import REASON_TITLES, case_detail
    from cases.workflow import get_case

    rt = runtime(ctx)
    with rt.transaction() as session:
        detail = case_detail(session, get_case(session, case_id))
    if as_json:
        print_json(detail)
        return
    console.print(safe(f"Case #{detail['id']}: {detail['title']}"), style="bold")
    console.print(
        f"{REASON_TITLES[detail['reason']]} · {detail['severity']} · {detail['status']}"
        f" · assignee {detail['assignee'] or '-'} · opened {local(rt, detail['opened_at'])}"
    )
    for line in detail["figures"]:
        console.print(safe(line))
    console.print(safe("Members: " + "; ".join(e["name"] for e in detail["entities"])))
    evidence = Table(
        "Mention, posted",
        "Source",
        "Author",
        "Labels",
        "Text",
        title=f"Evidence ({len(detail['evidence'])})",
    )
    for m in detail["evidence"]:
        labels = ", ".join(f"{label} {percent(m['scores'].get(label))}" for label in m["labels"])
        if m["reviewed_by"]:
            labels = f"{', '.join(m['labels']) or 'none'} (set by {m['reviewed_by']})"
        evidence.add_row(
            f"{m['id']}\n" + local(rt, m["created_at"]).replace(" ", "\n", 1),
            safe(m["source"]),
            safe(m["author"]),
            safe(labels),
            safe(f"About: {'; '.join(m['members'])}\n{m['text']}\n{m['url']}"),
        )
    console.print(evidence)
    history = Table("When", "Who", "What", "Change", title="History")
    for event in detail["history"]:
        change = f"{event['from']} → {event['to']}" if event["from"] else event["to"]
        history.add_row(
            local(rt, event["at"]).replace(" ", "\n", 1),
            safe(event["actor"]),
            event["action"],
            safe("\n".join(part for part in (change, event["note"]) if part)),
        )
    console.print(history)


@app.command()
def update(
    ctx: typer.Context,
    case_id: int = typer.Argument(..., metavar="ID", help="Case number."),
    status: str = typer.Option("", "--status", help="New status: triaged, escalated or closed."),
    note: str = typer.Option("", "--note", help="A note for the case history."),
    assignee: str = typer.Option(None, "--assignee", help="Who handles the case ('' to unassign)."),
    by: str = typer.Option("", "--by", help="Who is making the change (default: your login name)."),
) -> None:
    """Change a case's status, assignee or notes; every change is kept in its history."""
    from cases.workflow import get_case, update_case

    if status and status not in UPDATE_CHOICES:  # not the list's: a case never moves back to new
        raise VigilError(f"--status {status!r}: expected one of {', '.join(UPDATE_CHOICES)}")
    new_status = CaseStatus(status) if status else None
    note = note.strip()  # a blank note is no note, and a blank assignee no one
    assignee = assignee.strip() if assignee is not None else None
    if new_status is None and assignee is None and not note:
        raise VigilError("nothing to change: give --status, --assignee and/or --note")
    with runtime(ctx).transaction() as session:
        case = get_case(session, case_id, for_update=True)
        changes = update_case(
            session, case, by=by or getpass.getuser(), status=new_status, assignee=assignee, note=note or None
        )
    console.print(safe(f"Case #{case_id}: " + ("; ".join(changes) or "no change") + "."))


@app.command()
def digest(
    ctx: typer.Context,
    week: str = typer.Option("", "--week", help="A finished ISO week, e.g. 2026-W45; default: last week."),
) -> None:
    """Queue and send the weekly organisation digest now (each recipient and week once)."""
    from alerts.config import load_config
    from alerts.jobs import chosen_week
    from cases.jobs import send_due_digest

    rt = runtime(ctx)
    config = load_config(rt.settings)
    target = chosen_week(config, week)
    queued = send_due_digest(rt, week=target)
    console.print(f"Organisation digest for {target}: {queued or 0} emails queued (none if already sent).")
