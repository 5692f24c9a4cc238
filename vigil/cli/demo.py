"""``vigil demo``: the whole pipeline on a fictional week, with no keys and no network."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from vigil.cli.common import console, runtime
from vigil.demo.run import DemoSummary, demo_settings, run_demo
from vigil.labels import LABELS, NEUTRAL


def demo(
    ctx: typer.Context,
    folder: Path = typer.Option(
        Path("var/demo"), "--folder", help="Where the demo keeps its database and emails (recreated)."
    ),
) -> None:
    """Replay a fictional week of posts through the real pipeline: collect, classify, detect, alert, digest.

    The posts come from a local fake X API (the real tweepy code path runs); emails are written as
    .eml files. The first run trains the classifier (on 2 cores, a quarter of an hour or more: the
    README gives the times measured); later runs reuse it.
    """
    progress = Progress(
        SpinnerColumn(), TextColumn("[progress.description]{task.description}"), BarColumn(),
        MofNCompleteColumn(), TimeElapsedColumn(), console=console,
    )  # fmt: skip
    with progress:
        summary = run_demo(demo_settings(runtime(ctx).settings, folder), folder, progress)
    print_summary(summary)


def print_summary(summary: DemoSummary) -> None:
    console.print(
        f"\nThe fake X API answered {summary.requests} searches with {summary.posts_served} posts; "
        "Vigil kept those that name a registered doctor or practice."
    )
    table = Table(
        "Source", "Mentions", *LABELS, NEUTRAL, title="Mentions by source and label", title_justify="left"
    )
    for source, count in sorted(summary.mentions_by_source.items()):
        table.add_row(source, str(count), *(str(summary.labels[label]) for label in [*LABELS, NEUTRAL]))
    console.print(table)
    console.print(f"Immediate alerts: {summary.alerts}")
    cases = Table("Case", "Reason", "Severity", "Who", title="Emerging cases opened", title_justify="left")
    for case_id, reason, severity, who in summary.cases:
        cases.add_row(f"#{case_id}", reason, severity, escape(who))
    console.print(cases)
    console.print(f"{len(summary.emails)} emails written (kind, recipient, file):")
    for path in summary.emails:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        kind = str(message["Message-ID"]).strip("<>").split("@")[0].rsplit(".", 1)[-1]
        to = message["To"].addresses[0].addr_spec if message["To"] else "?"
        console.print(f"  {kind:<12} {escape(to):<30} {path}", soft_wrap=True)
    if summary.digest_preview:
        console.print(
            f"Digest preview (week {summary.digest_week}): {summary.digest_preview}", soft_wrap=True
        )
    console.print(
        f"\nExplore: vigil -c {summary.config_file} status | cases list | mentions export --format csv",
        soft_wrap=True,
    )
