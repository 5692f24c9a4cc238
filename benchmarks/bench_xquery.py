"""X query planning: requests per polling cycle, against the lower bound and one query per entity.

Each planned query is at least one request per polling cycle. The lower bound is the planned
terms' characters (with the " OR " joining each) over a query's capacity (the maximum length
less the parentheses and "-is:retweet" every query needs), rounded up: no packing of those
terms can need fewer requests. The plain bound divides by the maximum length itself.

Stability: how many queries change (and so restart their ``since_id``) when one doctor is added,
and how many of those cannot resume from the previous queries' ``since_id`` because they hold a
new term.

    .venv/bin/python benchmarks/bench_xquery.py
    .venv/bin/python benchmarks/bench_xquery.py --entities 1000 --json
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import synthetic
from collector.matching import Entity
from collector.xquery import (
    ENTERPRISE_MAX_LENGTH,
    RETWEETS,
    SELF_SERVE_MAX_LENGTH,
    carry_since_ids,
    plan_queries,
    query_cost_lower_bound,
    query_terms,
)

GOAL_RATIO = 1.1
NEW_NAMES = ("Quentin Blackadder", "Sarah Smith", "Priya Patel", "Olu Adebayo-Smith", "Harry Kane", "Wen Li")


def register_of(entities: int) -> list[Entity]:
    """A synthetic register of ``entities`` doctors and practices (one practice per 45 doctors)."""
    return synthetic.register(round(entities * 45 / 46))[:entities]


def newcomers(register: list[Entity], count: int) -> list[Entity]:
    """Doctors joining existing practices, with rare, common and famous names."""
    rng = random.Random(7)
    doctors = [entity for entity in register if entity.kind == "doctor"]
    made = []
    for number in range(count):
        colleague = rng.choice(doctors)
        made.append(
            Entity(
                "doctor",
                10_000_000 + number,
                f"{9_000_000 + number:07d}",
                (NEW_NAMES[number % len(NEW_NAMES)],),
                (f"@newdoctor{number}",) if number % 3 == 0 else (),
                town=colleague.town,
                specialty=colleague.specialty,
                practice_id=colleague.practice_id,
                practice_names=colleague.practice_names,
                practice_handles=colleague.practice_handles,
            )
        )
    return made


def measure(entities: int, max_length: int, trials: int) -> dict[str, float]:
    register = register_of(entities)
    suffix = f" {RETWEETS}"
    started = time.process_time()
    queries = plan_queries(register, max_length=max_length)
    seconds = time.process_time() - started
    terms = [term.text for term in query_terms(register, max_length=max_length, suffix=suffix)]
    bound = query_cost_lower_bound(terms, max_length=max_length, suffix=suffix)
    plain_bound = math.ceil(sum(len(term) + len(" OR ") for term in terms) / max_length)
    before = set(queries)
    changed, fresh = [], []
    since_ids = {query: str(1_000_000 + number) for number, query in enumerate(queries)}
    for newcomer in newcomers(register, trials):
        after = [
            query
            for query in plan_queries([*register, newcomer], max_length=max_length)
            if query not in before
        ]
        changed.append(len(after))
        fresh.append(len(after) - len(carry_since_ids(since_ids, after)))
    return {
        "entities": entities,
        "max_length": max_length,
        "terms": len(terms),
        "term_characters": sum(len(term) for term in terms),
        "queries": len(queries),
        "lower_bound": bound,
        "ratio_to_lower_bound": round(len(queries) / bound, 3),
        "plain_bound": plain_bound,
        "ratio_to_plain_bound": round(len(queries) / plain_bound, 3),
        "one_query_per_entity": entities,
        "ratio_to_one_per_entity": round(len(queries) / entities, 4),
        "longest_query": max(map(len, queries)),
        "plan_seconds": round(seconds, 2),
        "changed_queries_when_one_doctor_added_avg": round(sum(changed) / len(changed), 2),
        "changed_queries_when_one_doctor_added_max": max(changed),
        "restarted_queries_when_one_doctor_added_avg": round(sum(fresh) / len(fresh), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entities", type=int, nargs="+", default=[1_000, 50_000])
    parser.add_argument(
        "--max-length", type=int, nargs="+", default=[SELF_SERVE_MAX_LENGTH, ENTERPRISE_MAX_LENGTH]
    )
    parser.add_argument("--trials", type=int, default=8, help="doctors added, one at a time")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    results = [
        measure(entities, max_length, args.trials)
        for entities in args.entities
        for max_length in args.max_length
    ]
    worst = max(result["ratio_to_lower_bound"] for result in results)
    if args.json:
        print(json.dumps({"results": results, "goal_ratio": GOAL_RATIO, "goal_met": worst <= GOAL_RATIO}))
        return
    print(
        f"{'entities':>8} {'max len':>7} {'terms':>7} {'queries':>7} {'bound':>6} {'ratio':>6} {'plain':>6} "
        f"{'1/entity':>8} {'changed':>8} {'max':>4} {'restart':>7} {'plan s':>6}"
    )
    for r in results:
        print(
            f"{r['entities']:>8,} {r['max_length']:>7} {r['terms']:>7,} {r['queries']:>7,} "
            f"{r['lower_bound']:>6,} {r['ratio_to_lower_bound']:>6.3f} {r['ratio_to_plain_bound']:>6.3f} "
            f"{r['one_query_per_entity']:>8,} "
            f"{r['changed_queries_when_one_doctor_added_avg']:>8} "
            f"{r['changed_queries_when_one_doctor_added_max']:>4} "
            f"{r['restarted_queries_when_one_doctor_added_avg']:>7} {r['plan_seconds']:>6}"
        )
    print(f"worst ratio to the lower bound: {worst:.3f} (goal <= {GOAL_RATIO})")
    print("plain: ratio to the plain bound (term characters over the maximum length)")
    print("changed: queries that differ after one doctor is added (average over trials);")
    print("restart: of those, queries with a new term, which cannot resume from an old since_id")


if __name__ == "__main__":
    main()
