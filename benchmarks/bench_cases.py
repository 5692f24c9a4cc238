"""Benchmark: emerging-case detection on a synthetic month for 1,000 entities, against a naive baseline.

Replays a seeded scenario (background noise plus planted pile-ons, threats, a quiet doctor in the
news, a slow campaign across practices and a one-account campaign; see ``cases.evaluation``)
through the real detection code on a real database, one detection run per hour, and runs the naive
three-sigma-on-daily-counts detector on the same posts. Prints, per planted event, when it became
detectable and how long each detector took to find it, then the false-case rates side by side.

    .venv/bin/python benchmarks/bench_cases.py                 # SQLite in a temporary folder
    .venv/bin/python benchmarks/bench_cases.py --json          # one JSON object
    .venv/bin/python benchmarks/bench_cases.py --database-url postgresql+psycopg://postgres@127.0.0.1/test

Goals: every planted event found within one detection run of becoming detectable; at most one
false case per 1,000 entity-weeks.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from cases.detect import DetectionSettings
from cases.evaluation import Evaluation, ScenarioConfig, baseline, build_scenario, replay, summary
from vigil import migrate
from vigil.db import make_engine
from vigil.settings import load_settings

GOAL_FALSE_PER_1000 = 1.0


@contextmanager
def database(url: str | None) -> Iterator[Engine]:
    """A migrated, empty database: a temporary SQLite file, or a fresh schema on PostgreSQL."""
    if url is None:
        with tempfile.TemporaryDirectory() as folder:
            engine = make_engine(f"sqlite:///{Path(folder) / 'bench.db'}")
            migrate.upgrade(engine)
            yield engine
            engine.dispose()
        return
    schema = f"bench_cases_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(make_url(url).update_query_dict({"options": f"-csearch_path={schema}"}))
    try:
        migrate.upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--database-url", help="PostgreSQL URL (a temporary schema is made); default SQLite")
    parser.add_argument("--days", type=int, default=30, help="length of the evaluated period")
    parser.add_argument("--practices", type=int, default=100, help="practices (each with 9 doctors)")
    parser.add_argument("--seed", type=int, default=ScenarioConfig.seed)
    parser.add_argument("--every-minutes", type=int, default=60, help="time between detection runs")
    args = parser.parse_args()

    detection = DetectionSettings.from_settings(load_settings(environ={}))
    config = ScenarioConfig(practices=args.practices, days=args.days, seed=args.seed)
    every = timedelta(minutes=args.every_minutes)
    scenario = build_scenario(config, detection)
    console = Console(stderr=True)
    with (
        database(args.database_url) as engine,
        Progress(console=console, transient=True, disable=args.json) as bar,
    ):
        task = bar.add_task("Replaying hour by hour", total=None)
        ours = replay(
            engine,
            scenario,
            detection,
            every,
            lambda done, total: bar.update(task, completed=done, total=total),
        )
        backend = engine.dialect.name
    naive = baseline(scenario, every)
    figures = report_figures(scenario, ours, naive, every, backend)
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print_report(figures, ours)
    met = figures["goals"]["all_found_within_one_run"] and figures["goals"]["false_rate_within_goal"]
    return 0 if met else 1


def report_figures(
    scenario: Any, ours: Evaluation, naive: Evaluation, every: timedelta, backend: str
) -> dict[str, Any]:
    month = [p for p in scenario.posts if p.at >= scenario.config.start and p.event is None]
    both = summary([ours, naive], every)
    vigil, three_sigma = both["vigil"], both["three-sigma"]
    hours = every.total_seconds() / 3600
    return {
        "scenario": {
            "entities": scenario.config.entities,
            "practices": scenario.config.practices,
            "doctors": len(scenario.doctors),
            "days": scenario.config.days,
            "history_days": scenario.config.history_days,
            "background_posts": len(month),
            "background_flagged": sum(1 for p in month if p.flagged),
            "planted_events": len(scenario.events),
            "seed": scenario.config.seed,
            "run_every_hours": hours,
            "database": backend,
        },
        "vigil": vigil,
        "three-sigma": three_sigma,
        "ratios": {
            "false_cases_baseline_over_vigil": _ratio(three_sigma["false_cases"], vigil["false_cases"]),
            "found_within_one_run_vigil_over_baseline": _ratio(
                vigil["found_within_one_run"], three_sigma["found_within_one_run"]
            ),
        },
        "goals": {
            "all_found_within_one_run": vigil["found_within_one_run"] == vigil["events"],
            "false_rate_within_goal": vigil["false_per_1000_entity_weeks"] <= GOAL_FALSE_PER_1000,
            "max_false_per_1000_entity_weeks": GOAL_FALSE_PER_1000,
        },
        "detection_ms_per_run": round(1000 * ours.seconds / max(ours.runs, 1), 1),
    }


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 2) if b else None


def print_report(figures: dict[str, Any], ours: Evaluation) -> None:
    console = Console()
    s = figures["scenario"]
    console.print(
        f"Synthetic month: {s['entities']:,} entities ({s['practices']} practices, {s['doctors']} doctors),"
        f" {s['days']} days after {s['history_days']} days of history;"
        f" {s['background_posts']:,} background posts ({s['background_flagged']:,} flagged)"
        f" and {s['planted_events']} planted events."
        f" Detection every {s['run_every_hours']:g} h on {s['database']}; seed {s['seed']}."
    )
    table = Table(
        "Planted event", "Kind", "Target", "Posts", "Detectable (UTC)", "Vigil delay", "Case", "3-sigma delay"
    )
    for mine, theirs in zip(figures["vigil"]["per_event"], figures["three-sigma"]["per_event"], strict=True):
        table.add_row(
            mine["event"],
            mine["kind"],
            mine["target"],
            str(mine["posts"]),
            mine["detectable_at"][:16].replace("T", " "),
            _delay(mine["delay_hours"]),
            mine["case_reason"] or "-",
            _delay(theirs["delay_hours"]),
        )
    console.print(table)
    v, b = figures["vigil"], figures["three-sigma"]
    side = Table("", "Vigil", "Three-sigma baseline", "Ratio", title="Side by side")
    side.add_row(
        "Found within one run",
        f"{v['found_within_one_run']}/{v['events']}",
        f"{b['found_within_one_run']}/{b['events']}",
        str(figures["ratios"]["found_within_one_run_vigil_over_baseline"]),
    )
    side.add_row("Found at all", f"{v['found']}/{v['events']}", f"{b['found']}/{b['events']}", "")
    side.add_row("Cases (alerts) opened", str(v["cases"]), str(b["cases"]), "")
    side.add_row(
        "False cases",
        str(v["false_cases"]),
        str(b["false_cases"]),
        f"{figures['ratios']['false_cases_baseline_over_vigil']}× fewer" if v["false_cases"] else "",
    )
    side.add_row(
        "False per 1,000 entity-weeks",
        f"{v['false_per_1000_entity_weeks']:.2f}",
        f"{b['false_per_1000_entity_weeks']:.2f}",
        f"goal ≤ {GOAL_FALSE_PER_1000:g}",
    )
    side.add_row(
        "Time per detection run",
        f"{figures['detection_ms_per_run']} ms",
        f"{1000 * b['seconds'] / max(b['runs'], 1):.1f} ms (in memory)",
        "",
    )
    console.print(side)
    for case in ours.false_cases:
        console.print(
            f"false case #{case['id']} ({case['reason']}, {case['opened_at'][:16]}): {case['title']}"
        )
    goals = figures["goals"]
    console.print(
        f"Goals: every event within one run: {'met' if goals['all_found_within_one_run'] else 'NOT met'};"
        f" ≤ {GOAL_FALSE_PER_1000:g} false case per 1,000 entity-weeks:"
        f" {'met' if goals['false_rate_within_goal'] else 'NOT met'}."
    )


def _delay(hours: float | None) -> str:
    if hours is None:
        return "missed"
    return f"{hours * 60:.0f} min" if hours < 1 else f"{hours:.1f} h"


if __name__ == "__main__":
    sys.exit(main())
