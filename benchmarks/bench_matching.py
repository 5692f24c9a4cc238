"""Matching throughput: a UK-sized synthetic register against a stream of posts, on one core.

Compares Vigil's matcher (one Aho-Corasick automaton, context rules, original spans) with the
naive approach: one compiled word-bounded regex per registered name, run over every post.
The naive baseline is far too slow to run in full, so it runs on a sample of names and posts
and is scaled to the full register and stream. Times are CPU seconds of this (single-threaded)
process, so that other work on the machine does not distort them; wall-clock seconds are shown
alongside.

    .venv/bin/python benchmarks/bench_matching.py                  # 300,000 doctors, 100,000 posts
    .venv/bin/python benchmarks/bench_matching.py --doctors 20000 --posts 10000 --json
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import synthetic
from collector.matching import Matcher

GOAL_POSTS_PER_SECOND = 50_000


def rss_mib() -> float:
    """Resident memory of this process (Linux), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def naive_posts_per_second(names: list[str], texts: list[str], sample_names: int, sample_posts: int) -> float:
    """One regex per name over every post, measured on a sample and scaled to all names."""
    step = max(1, len(names) // sample_names)
    patterns = [re.compile(r"\b" + re.escape(name) + r"\b", re.IGNORECASE) for name in names[::step]]
    sample = texts[:sample_posts]
    started = time.process_time()
    for text in sample:
        for pattern in patterns:
            pattern.search(text)
    elapsed = time.process_time() - started
    seconds_per_post = elapsed / len(sample) * (len(names) / len(patterns))
    return 1 / seconds_per_post


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--doctors", type=int, default=300_000)
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--baseline-names", type=int, default=2_000, help="names in the naive sample")
    parser.add_argument("--baseline-posts", type=int, default=1_000, help="posts in the naive sample")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    entities = synthetic.register(args.doctors)
    posts = list(synthetic.posts(entities, args.posts))
    names = [name for entity in entities for name in entity.names]

    before = rss_mib()
    started = time.process_time()
    matcher = Matcher.from_entities(entities)
    build_seconds = time.process_time() - started
    memory = rss_mib() - before

    started, wall = time.process_time(), time.perf_counter()
    matched = sum(1 for post in posts if matcher.match(post))
    match_seconds = time.process_time() - started
    wall_seconds = time.perf_counter() - wall
    ours = len(posts) / match_seconds

    naive = naive_posts_per_second(
        names, [post.text for post in posts], args.baseline_names, args.baseline_posts
    )
    figures = {
        "doctors": args.doctors,
        "practices": len(entities) - args.doctors,
        "registered_names": len(names),
        "automaton_keys": matcher.pattern_count,
        "posts": len(posts),
        "posts_matched": matched,
        "build_seconds": round(build_seconds, 2),
        "automaton_memory_mib": round(memory, 1),
        "match_seconds": round(match_seconds, 2),
        "match_wall_seconds": round(wall_seconds, 2),
        "posts_per_second": round(ours),
        "naive_regex_posts_per_second": round(naive, 2),
        "speedup_vs_naive": round(ours / naive),
        "goal_posts_per_second": GOAL_POSTS_PER_SECOND,
        "goal_met": ours >= GOAL_POSTS_PER_SECOND,
    }
    if args.json:
        print(json.dumps(figures))
        return
    print(f"register: {args.doctors:,} doctors, {figures['practices']:,} practices, {len(names):,} names")
    print(f"automaton: {figures['automaton_keys']:,} keys, built in {build_seconds:.1f} s, +{memory:.0f} MiB")
    print(
        f"posts: {len(posts):,} ({matched:,} matched)",
        f"in {match_seconds:.2f} s CPU ({wall_seconds:.2f} s wall)",
    )
    print(f"Vigil matcher: {ours:,.0f} posts/s (goal {GOAL_POSTS_PER_SECOND:,})")
    print(f"naive regex per name: {naive:,.2f} posts/s (sampled, scaled)")
    print(f"speedup: {ours / naive:,.0f}x")


if __name__ == "__main__":
    main()
