"""Benchmark the alerts step: weekly digests for many recipients, and SMTP send rates.

    python benchmarks/bench_alerts.py                      # 10,000 recipients, 400 messages
    python benchmarks/bench_alerts.py --recipients 1000    # a quick run
    python benchmarks/bench_alerts.py --json               # one JSON object

Digests: a register of practices (a manager and a doctor each) and two defence-organisation
recipients, with eight weeks of mentions distributed as they are in life (most practices are
rarely mentioned, a few often), built and enqueued as ``vigil digest send`` does. The baseline,
on a sample of recipients, is the same work without sharing: the data queried and the chart drawn
for every recipient.

SMTP: stored digest messages (HTML, text and chart) sent to an aiosmtpd server on 127.0.0.1, over
one reused connection and with one connection per message; then a whole outbox pass
(claims and status updates in the database included).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy import Engine, create_engine, insert, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alerts.chart import _layout, trend_chart
from alerts.config import AlertsConfig, load_config
from alerts.digest import build_digests, digest_email, scope_data
from alerts.outbox import deliver, enqueue
from alerts.transports import Email
from alerts.transports.smtp import SmtpTransport
from alerts.weeks import Week
from vigil import migrate
from vigil.db import make_engine, transaction
from vigil.labels import LABELS
from vigil.models import (
    Classification,
    Doctor,
    Mention,
    MentionEntity,
    OutboxMessage,
    Practice,
    Recipient,
    Tenant,
)
from vigil.settings import load_settings

WEEK = Week(2026, 46)
SENT_AT = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)
DOCTORS_PER_PRACTICE = 4


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--recipients", type=int, default=10_000, help="digest recipients (default 10,000)")
    parser.add_argument(
        "--baseline-sample", type=int, default=300, help="recipients in the unshared baseline"
    )
    parser.add_argument("--messages", type=int, default=400, help="messages per SMTP run (default 400)")
    parser.add_argument("--database-url", default="", help="PostgreSQL URL to use instead of a SQLite file")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    results = in_scratch_database(args, run)
    if args.json:
        print(json.dumps(results))
    else:
        report(results)


def in_scratch_database(
    args: argparse.Namespace, run: Callable[[argparse.Namespace, str, Path], dict[str, Any]]
) -> dict[str, Any]:
    """``run(args, url, folder)`` seeded with ``--seed``, on a new database (``--database-url``, or
    a SQLite file) and folder, both removed afterwards."""
    random.seed(args.seed)
    folder = Path(tempfile.mkdtemp(prefix="vigil-bench-"))
    url, drop = database(args.database_url, folder)
    try:
        return run(args, url, folder)
    finally:
        drop()
        shutil.rmtree(folder, ignore_errors=True)


def database(url: str, folder: Path) -> tuple[str, Any]:
    """A migrated empty database (a fresh PostgreSQL schema, or a SQLite file) and how to remove it."""
    if not url:
        path = folder / "bench.db"
        return f"sqlite:///{path}", lambda: None
    schema = f"vigil_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    scoped = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    return scoped.render_as_string(hide_password=False), drop


def run(args: argparse.Namespace, url: str, folder: Path) -> dict[str, Any]:
    engine = make_engine(url)
    migrate.upgrade(engine)
    settings = load_settings(
        environ={"VIGIL_DATABASE__URL": url, "VIGIL_EMAIL__OUTBOX_DIR": str(folder / "outbox")}
    )
    config = load_config(settings)
    started = time.perf_counter()
    mentions = populate(engine, args.recipients)
    results: dict[str, Any] = {
        "backend": engine.dialect.name,
        "recipients": args.recipients,
        "mentions": mentions,
        "populate_s": round(time.perf_counter() - started, 1),
    }
    results.update(bench_baseline(engine, config, args.baseline_sample))
    results.update(bench_digests(engine, config))
    results.update(bench_smtp(engine, config, args.messages, folder))
    engine.dispose()
    return results


def populate(engine: Engine, recipients: int, scale: float = 1.0) -> int:
    """A register and eight weeks of mentions (``scale`` times as many); returns their number."""
    practices = max(1, (recipients - 2) // 2)
    weeks = [WEEK.shifted(offset) for offset in range(-7, 1)]
    london = load_config(load_settings(environ={})).digest.timezone
    with transaction(engine) as session:
        session.execute(
            insert(Tenant),
            [{"id": 1, "kind": "organisation", "slug": "org", "name": "Defence organisation"}]
            + [
                {"id": n + 2, "kind": "practice", "slug": f"b{n:05d}", "name": f"Practice {n}"}
                for n in range(practices)
            ],
        )
        session.execute(
            insert(Practice),
            [
                {
                    "id": n + 1,
                    "tenant_id": n + 2,
                    "ods_code": f"B{n:05d}",
                    "name": f"Surgery {n}",
                    "handles": [],
                }
                for n in range(practices)
            ],
        )
        session.execute(
            insert(Doctor),
            [
                {
                    "id": n * DOCTORS_PER_PRACTICE + d + 1,
                    "gmc_number": f"{n * DOCTORS_PER_PRACTICE + d + 1000000:07d}",
                    "full_name": f"Doctor {n}-{d}",
                    "practice_id": n + 1,
                    "aliases": [],
                    "handles": [],
                }
                for n in range(practices)
                for d in range(DOCTORS_PER_PRACTICE)
            ],
        )
        people = [
            {"email": "cases@org.example", "scope": "org", "tenant_id": 1},
            {"email": "desk@org.example", "scope": "org", "tenant_id": 1},
        ]
        for n in range(practices):
            people.append(
                {
                    "email": f"manager@b{n:05d}.example",
                    "scope": "practice",
                    "tenant_id": n + 2,
                    "practice_id": n + 1,
                }
            )
            people.append(
                {"email": f"dr@b{n:05d}.example", "scope": "doctor", "tenant_id": n + 2,
                 "doctor_id": n * DOCTORS_PER_PRACTICE + 1}
            )  # fmt: skip
        session.execute(insert(Recipient), [{"name": "", "categories": list(LABELS), **p} for p in people])
        return _mentions(session, practices, weeks, london, scale)


def _mentions(session: Session, practices: int, weeks: list[Week], london: Any, scale: float) -> int:
    mentions, entities, classifications = [], [], []
    number = 0
    for n in range(practices):
        # Most practices are rarely mentioned; a few are mentioned a lot (a heavy tail).
        weekly = random.choice([0] * 12 + [0.2] * 5 + [1] * 2 + [4]) * random.choice([1, 1, 1, 3])
        for week in weeks:
            for _ in range(_poisson(weekly * scale)):
                number += 1
                created = week.start(london) + timedelta(seconds=random.randint(0, 7 * 86400 - 1))
                labels = _labels()
                mentions.append({
                    "id": number, "source": random.choice(["x", "reddit", "bluesky", "rss"]),
                    "external_id": str(number), "url": f"https://x.com/u/status/{number}",
                    "author": "@someone", "created_at": created, "collected_at": created,
                    "text": f"Post {number} " + "words " * 30, "extra": {},
                })  # fmt: skip
                doctor = n * DOCTORS_PER_PRACTICE + random.randint(1, DOCTORS_PER_PRACTICE)
                on_doctor = random.random() < 0.7
                entities.append({
                    "mention_id": number, "matched_text": "x", "linked_at": created,
                    "doctor_id": doctor if on_doctor else None, "practice_id": None if on_doctor else n + 1,
                })  # fmt: skip
                classifications.append({
                    "mention_id": number, "model_id": "bench", "model_version": "1", "classified_at": created,
                    "scores": {label: round(random.random(), 2) for label in LABELS},
                    **{label: label in labels for label in LABELS},
                })  # fmt: skip
    for table, rows in ((Mention, mentions), (MentionEntity, entities), (Classification, classifications)):
        for start in range(0, len(rows), 5000):
            session.execute(insert(table), rows[start : start + 5000])
    return number


def _poisson(mean: float) -> int:
    count, limit, product = 0, 2.718281828**-mean, random.random()
    while product > limit:
        count += 1
        product *= random.random()
    return count


def _labels() -> set[str]:
    roll = random.random()
    if roll < 0.02:
        return {"threat", "abusive"}
    if roll < 0.08:
        return {"abusive"}
    if roll < 0.20:
        return {"critical"}
    if roll < 0.30:
        return {"praise"}
    return set()


def bench_baseline(engine: Engine, config: AlertsConfig, sample: int) -> dict[str, Any]:
    """The same digests with nothing shared between recipients (rolled back afterwards)."""
    with Session(engine) as session:
        recipients = session.scalars(select(Recipient).order_by(Recipient.id).limit(sample)).all()
        started = time.perf_counter()
        for recipient in recipients:
            trend_chart.cache_clear()
            _layout.cache_clear()  # a fresh figure for every chart
            data = scope_data(session, config, recipient, WEEK, with_file=True)
            email, images = digest_email(session, config, recipient, data)
            enqueue(
                session, config.email, key=f"baseline:{recipient.id}", kind="digest",
                recipient_email=recipient.email, subject=email.subject, text=email.text, html=email.html,
                images=images, attachments=[data.file.attachment] if data.file else [], now=SENT_AT,
            )  # fmt: skip
        elapsed = time.perf_counter() - started
        session.rollback()
    trend_chart.cache_clear()
    return {
        "baseline_sample": len(recipients),
        "baseline_ms_per_digest": round(elapsed * 1000 / len(recipients), 2),
    }


def bench_digests(engine: Engine, config: AlertsConfig) -> dict[str, Any]:
    started = time.perf_counter()
    report = build_digests(engine, config, WEEK, now=SENT_AT)
    elapsed = time.perf_counter() - started
    with Session(engine) as session:
        sizes = list(
            session.scalars(select(OutboxMessage.raw).where(OutboxMessage.kind == "digest").limit(2000))
        )
    charts = trend_chart.cache_info()
    return {
        "digests_built": report.built,
        "digests_s": round(elapsed, 2),
        "digest_ms_per_digest": round(elapsed * 1000 / max(report.built, 1), 2),
        "digests_per_s": round(report.built / elapsed, 1),
        "charts_drawn": charts.misses,
        "charts_reused": charts.hits,
        "digest_mean_kb": round(sum(len(raw) for raw in sizes) / max(len(sizes), 1) / 1024, 1),
    }


class _Accept:
    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.count += 1
        return "250 OK"


def bench_smtp(engine: Engine, config: AlertsConfig, count: int, folder: Path) -> dict[str, Any]:
    from socket import socket

    with socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handler = _Accept()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        smtp = load_config(
            load_settings(
                environ={
                    "VIGIL_DATABASE__URL": str(engine.url.render_as_string(hide_password=False)),
                    "VIGIL_EMAIL__BACKEND": "smtp",
                    "VIGIL_EMAIL__SMTP_HOST": "127.0.0.1",
                    "VIGIL_EMAIL__SMTP_PORT": str(port),
                    "VIGIL_EMAIL__SMTP_SECURITY": "none",
                    "VIGIL_EMAIL__BATCH_SIZE": "100",
                }
            )
        ).email
        with Session(engine) as session:
            rows = session.execute(
                select(
                    OutboxMessage.id,
                    OutboxMessage.message_id,
                    OutboxMessage.recipient_email,
                    OutboxMessage.raw,
                )
                .where(OutboxMessage.kind == "digest", OutboxMessage.raw.is_not(None))
                .order_by(OutboxMessage.id.desc())
                .limit(count)
            ).all()
        emails = [Email(r.id, r.message_id, smtp.from_address, r.recipient_email, r.raw) for r in rows]

        started = time.perf_counter()
        assert all(error is None for _, error in SmtpTransport(smtp).send(emails))
        reused = time.perf_counter() - started

        started = time.perf_counter()
        for email in emails:
            assert all(error is None for _, error in SmtpTransport(smtp).send([email]))
        per_message = time.perf_counter() - started

        with transaction(engine) as session:  # leave only the measured messages pending
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.not_in([e.id for e in emails]))
                .values(status="sent")
            )
        started = time.perf_counter()
        delivered = deliver(engine, smtp, SmtpTransport(smtp), now=SENT_AT + timedelta(days=1)).sent
        outbox_pass = time.perf_counter() - started
    finally:
        controller.stop()
    n = len(emails)
    return {
        "smtp_messages": n,
        "smtp_mean_kb": round(sum(len(e.raw) for e in emails) / max(n, 1) / 1024, 1),
        "smtp_reused_msgs_per_s": round(n / reused, 1),
        "smtp_per_message_msgs_per_s": round(n / per_message, 1),
        "outbox_pass_messages": delivered,
        "outbox_pass_msgs_per_s": round(delivered / outbox_pass, 1) if delivered else 0.0,
    }


def report(results: dict[str, Any]) -> None:
    def line(label: str, value: Any, note: str = "") -> None:
        print(f"  {label:<46} {value!s:>12}  {note}")

    scale = f"{results['recipients']:,} recipients, {results['mentions']:,} mentions"
    print(f"Alerts benchmark ({results['backend']}, {scale})")
    print("Weekly digests (render and enqueue)")
    line("digests built", f"{results['digests_built']:,}")
    line("total", f"{results['digests_s']} s")
    line("per digest", f"{results['digest_ms_per_digest']} ms", f"{results['digests_per_s']} digests/s")
    line("charts drawn / reused", f"{results['charts_drawn']} / {results['charts_reused']}")
    line("mean message size", f"{results['digest_mean_kb']} KB")
    line(
        f"baseline, nothing shared ({results['baseline_sample']} digests)",
        f"{results['baseline_ms_per_digest']} ms",
        f"ratio {results['baseline_ms_per_digest'] / results['digest_ms_per_digest']:.1f}x slower",
    )
    print(
        f"SMTP to aiosmtpd on 127.0.0.1 ({results['smtp_messages']} digests of {results['smtp_mean_kb']} KB)"
    )
    line("one connection reused", f"{results['smtp_reused_msgs_per_s']} msg/s")
    line(
        "one connection per message",
        f"{results['smtp_per_message_msgs_per_s']} msg/s",
        f"ratio {results['smtp_reused_msgs_per_s'] / results['smtp_per_message_msgs_per_s']:.1f}x slower",
    )
    line("whole outbox pass (claims + status updates)", f"{results['outbox_pass_msgs_per_s']} msg/s")


if __name__ == "__main__":
    main()
