"""``vigil mentions label`` (a person corrects the labels) and ``vigil model corrections`` (the
corrections as corpus lines for the next training)."""

from __future__ import annotations

import getpass
import json
import sys
from contextlib import nullcontext
from pathlib import Path

import typer

from vigil.cli.common import console, err_console, runtime


def label(
    ctx: typer.Context,
    ids: list[int] = typer.Argument(
        ..., help="Mention id(s), as `vigil mentions export` and `vigil cases show` give them."
    ),
    labels: str = typer.Option(
        ...,
        "--labels",
        help="The right labels, comma-separated (threat, abusive, critical, praise), or none.",
    ),
    by: str = typer.Option("", "--by", help="Who reviewed them, for the record (default: your login)."),
) -> None:
    """Correct a mention's labels: a false threat or a missed one. No later classification replaces them.

    Routing and case detection act on the new labels as on any relabel: a post that is now a threat
    is alerted at once if it is recent, and may open a case; one that is no longer a threat or
    abuse alerts nobody. Emails already sent are not recalled. `vigil model corrections` exports
    the corrections for training.
    """
    from classifier.review import correct_labels, parse_labels

    chosen = parse_labels(labels)
    with runtime(ctx).transaction() as session:
        corrections = correct_labels(session, ids, chosen, by or getpass.getuser())
    for item in corrections:
        before, after = ", ".join(item.before) or "none", ", ".join(item.after) or "none"
        console.print(f"mention {item.mention_id}: {before} -> {after}")


def corrections(
    ctx: typer.Context,
    output: Path | None = typer.Option(
        None, "--output", "-o", help="File to write (default: standard output)."
    ),
) -> None:
    """Write every mention whose labels a person set, as corpus lines ({"text", "labels"}).

    Add them to the corpus (classifier/corpus/) to teach the next model what it got wrong; see
    docs/classifier.md. They hold the posts' text: keep the file as you keep the database.
    """
    from classifier.review import corrections as reviewed

    count = 0
    with runtime(ctx).transaction() as session:
        target = output.open("w", encoding="utf-8") if output else nullcontext(sys.stdout)
        with target as out:
            for line in reviewed(session):
                out.write(json.dumps(line) + "\n")  # ASCII: no control or bidi character reaches a terminal
                count += 1
    if output is not None:
        err_console.print(f"wrote {count} correction(s) to {output}")
