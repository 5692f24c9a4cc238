"""``vigil demo``: the whole pipeline on the embedded default, with a week of fictional posts.

The demo works in its own folder (``var/demo`` by default, recreated each run) so it never
touches a real database: SQLite there, emails as .eml files there, and a settings file there so
that the user can explore the result afterwards (``vigil -c var/demo/vigil.toml cases list``).
The posts are served by a local fake X API, so the real tweepy code path runs: query planning,
paging, since_id checkpoints, matching, storage; then the real classifier, case detection,
routing, rendering and the file email backend.
"""

from __future__ import annotations

import json
import secrets
import shutil
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.progress import Progress
from sqlalchemy import func, select

from vigil import migrate
from vigil.demo.fake_x import FakeXServer, Tweet, snowflake
from vigil.errors import VigilError
from vigil.paths import resource_dir
from vigil.register import Kind, import_register
from vigil.runtime import Runtime
from vigil.settings import Settings

SAMPLE = resource_dir("config") / "sample"
REGISTER_FILES = [SAMPLE / "register" / f"{kind}.csv" for kind in Kind]
DEMO_WEEK = SAMPLE / "demo_week.jsonl"
# The practice whose digest the demo previews: Meanwood, where the week's pile-on happens.
DIGEST_PREVIEW_FOR = "manager@x90001.nhs.example"
DEMO_MARK = "# Written by `vigil demo`"


@dataclass
class DemoSummary:
    folder: Path
    config_file: Path
    posts_served: int = 0
    requests: int = 0
    mentions_by_source: Counter[str] = field(default_factory=Counter)
    labels: Counter[str] = field(default_factory=Counter)
    alerts: int = 0
    cases: list[tuple[int, str, str, str]] = field(default_factory=list)  # id, reason, severity, who
    emails: list[Path] = field(default_factory=list)
    digest_preview: Path | None = None
    digest_week: str = ""
    model: str = ""


def demo_tweets(now: datetime, path: Path = DEMO_WEEK) -> list[Tweet]:
    """The bundled week, moved so that its last post was an hour ago (X searches the last 7 days)."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    offsets = [
        timedelta(days=row["day"], hours=int(row["time"][:2]), minutes=int(row["time"][3:])) for row in rows
    ]
    start = now - max(offsets) - timedelta(hours=1)
    tweets = []
    for sequence, (row, offset) in enumerate(zip(rows, offsets, strict=True)):
        moment = (start + offset).replace(microsecond=0)
        tweets.append(
            Tweet(
                id=snowflake(moment, sequence),
                text=row["text"],
                author=row["author"].lstrip("@"),
                created_at=moment,
                in_reply_to=(row.get("in_reply_to") or "").lstrip("@") or None,
            )
        )
    return tweets


def demo_settings(base: Settings, folder: Path) -> Settings:
    """The embedded default, confined to the demo folder."""
    return base.with_overrides(
        database__url=f"sqlite:///{folder / 'vigil.db'}",
        email__backend="file",
        email__outbox_dir=str(folder / "outbox"),
        service__port=0,
    )


def clear_demo_folder(folder: Path) -> None:
    """Recreate the folder, but only one the demo made (its settings file says so) or an empty
    one: ``--folder`` pointing at real data must never delete it."""
    if folder.exists() and any(folder.iterdir()):
        config = folder / "vigil.toml"
        if not (config.is_file() and config.read_text(encoding="utf-8").startswith(DEMO_MARK)):
            raise VigilError(
                f"{folder} is not empty and was not made by `vigil demo`; the demo recreates its"
                " folder, so give it a new or empty one (--folder)"
            )
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)


def write_config(settings: Settings, folder: Path) -> Path:
    """A settings file for exploring the demo's results with the ordinary commands."""
    path = folder / "vigil.toml"
    path.write_text(
        f"{DEMO_MARK}: explore its results with `vigil -c {path} ...`\n"
        f'[database]\nurl = "{settings.database.url}"\n\n'
        f'[email]\nbackend = "{settings.email.backend}"\noutbox_dir = "{settings.email.outbox_dir}"\n',
        encoding="utf-8",
    )
    return path


def run_demo(settings: Settings, folder: Path, progress: Progress) -> DemoSummary:
    """Set up, train or load the model, collect the week through the fake X API, run every step.

    ``settings`` name the database and the email backend (``demo_settings`` for the CLI: SQLite
    and .eml files in ``folder``; the end-to-end test: its own database and a real SMTP server).
    """
    from alerts.config import load_config
    from alerts.digest import build_digests
    from alerts.outbox import deliver
    from alerts.weeks import Week
    from cases.jobs import send_due_digest
    from classifier.train import ensure_model
    from collector.run import collect_once
    from vigil.service import run_pipeline

    clear_demo_folder(folder)
    summary = DemoSummary(folder, write_config(settings, folder))

    step = progress.add_task("Model", total=None)
    model_dir, trained = ensure_model(settings, progress=progress)
    progress.update(step, total=1, completed=1, description=f"Model {'trained' if trained else 'ready'}")
    summary.model = str(model_dir)

    runtime = Runtime(settings)
    try:
        step = progress.add_task("Database and register", total=2)
        migrate.upgrade(runtime.engine)
        progress.advance(step)
        with runtime.transaction() as session:
            import_register(session, REGISTER_FILES, settings.organisation.name)
        progress.advance(step)

        now = datetime.now(UTC)
        tweets = demo_tweets(now)
        token = secrets.token_urlsafe(24)
        step = progress.add_task("Collecting from the fake X API", total=None)
        with FakeXServer(tweets, token) as server:
            collecting = Runtime(
                settings.with_overrides(
                    sources__x__enabled=True,
                    sources__x__base_url=server.base_url,
                    sources__x__bearer_token=token,
                    collector__backfill_hours=168,
                )
            )
            try:
                reports = collect_once(collecting, "x")
            finally:
                collecting.close()
            summary.posts_served, summary.requests = server.posts_served, server.requests
        failed = [report.error for report in reports if report.error]
        if failed:
            raise RuntimeError(f"collecting from the fake X API failed: {failed[0]}")
        progress.update(step, total=1, completed=1, description="Collected from the fake X API")

        step = progress.add_task("Classify, detect cases, send alerts", total=None)
        run_pipeline(runtime)
        progress.update(step, total=1, completed=1)

        step = progress.add_task("Weekly digests", total=None)
        config = load_config(settings)
        # Digests count posts in the week Vigil found them: all of the demo's, this week (unfinished).
        week = Week.containing(datetime.now(UTC), config.digest.timezone)
        build_digests(runtime.engine, config, week, now=now)
        send_due_digest(runtime, now=now, week=week)
        deliver(runtime.engine, config.email, now=now)
        progress.update(step, total=1, completed=1)

        _summarise(runtime, summary, week)
    finally:
        runtime.close()
    return summary


def _summarise(runtime: Runtime, summary: DemoSummary, week: Any) -> None:
    from alerts.config import load_config
    from alerts.digest import preview_html
    from vigil.models import Alert, Case, Classification, Mention, Recipient

    with runtime.transaction() as session:
        by_source = select(Mention.source, func.count()).group_by(Mention.source)
        summary.mentions_by_source = Counter({source: count for source, count in session.execute(by_source)})
        for classification in session.scalars(select(Classification)):
            summary.labels.update(classification.labels or ["neutral"])
        summary.alerts = session.scalar(select(func.count()).select_from(Alert)) or 0
        for case in session.scalars(select(Case).order_by(Case.id)):
            who = ", ".join(
                link.doctor.full_name if link.doctor else link.practice.name if link.practice else "?"
                for link in case.entities
            )
            summary.cases.append((case.id, case.reason.value, case.severity.value, who))
        summary.emails = sorted(Path(runtime.settings.email.outbox_dir).glob("*.eml"))
        manager = session.scalar(select(Recipient).where(Recipient.email == DIGEST_PREVIEW_FOR))
        if manager is not None:
            preview = summary.folder / "digest-preview.html"
            html, attachment = preview_html(session, load_config(runtime.settings), manager, week)
            preview.write_text(html, encoding="utf-8")
            if attachment is not None:
                (summary.folder / attachment.filename).write_bytes(attachment.data)
            summary.digest_preview, summary.digest_week = preview, str(week)
