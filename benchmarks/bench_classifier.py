"""How fast the classifier labels tweet-length texts on this CPU, against the naive way.

On the same 2,000 tweet-length texts (corpus posts of at most 280 characters, cycled), in one
run, each path in its own process so that its peak memory is its own:

1. naive: a transformers ``pipeline`` called one text at a time (what most code does);
2. fp32: Vigil's path (windows sorted by length, dynamic padding, ``inference_mode``);
3. int8: the same with the Linear layers quantised to int8 (the default when it kept its accuracy).

Prints texts per second, ratios, peak memory (RSS) and how often int8 agrees with fp32 on the
labels; ``--json`` prints one JSON object. Needs a trained model (``vigil model train``).
The goal: int8 at least 5x naive, and at least 600 texts/s on a 2-core machine. Other work on
the machine slows every path; the load average is printed so that a busy run can be spotted.

    python benchmarks/bench_classifier.py [--texts 2000] [--threads 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

os.environ["TOKENIZERS_PARALLELISM"] = "false"
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PATHS = ("naive", "fp32", "int8")
MAX_CHARS = 280


def tweet_length_texts(count: int) -> list[str]:
    """Corpus posts of tweet length, in a fixed order, repeated until there are ``count``."""
    from classifier.corpus import CORPUS_DIR, read_jsonl

    texts = sorted(
        {
            example.text
            for name in ("train", "dev", "test")
            for example in read_jsonl(CORPUS_DIR / f"{name}.jsonl")
            if len(example.text) <= MAX_CHARS
        }
    )
    return [texts[i % len(texts)] for i in range(count)]


def run_path(path: str, count: int, threads: int) -> dict[str, Any]:
    """Time one path in this process (called in a child process by ``main``)."""
    import torch

    from classifier.model import load_classifier
    from vigil.settings import load_settings

    texts = tweet_length_texts(count)
    settings = load_settings().with_overrides(classifier__threads=threads)
    if path == "naive":
        from transformers import pipeline

        torch.set_num_threads(threads)
        model_dir = str(Path(settings.classifier.model_dir).expanduser())
        classify = pipeline("text-classification", model=model_dir, top_k=None, function_to_apply="sigmoid")
        for text in texts[:32]:
            classify(text)  # warm-up
        started = time.perf_counter()
        for text in texts:
            classify(text)
        seconds = time.perf_counter() - started
        labels: list[list[str]] = []
    else:
        classifier = load_classifier(settings.with_overrides(classifier__precision=path))
        classifier.predict(texts[:64])  # warm-up
        started = time.perf_counter()
        predictions = classifier.predict(texts)
        seconds = time.perf_counter() - started
        labels = [list(p.labels) for p in predictions]
    return {
        "texts": len(texts),
        "seconds": round(seconds, 3),
        "texts_per_second": round(len(texts) / seconds, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "labels": labels,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--path", choices=PATHS, help=argparse.SUPPRESS)  # child process
    args = parser.parse_args()
    if args.path:
        print(json.dumps(run_path(args.path, args.texts, args.threads)))
        return

    load_before = os.getloadavg()[0]
    results: dict[str, dict[str, Any]] = {}
    for path in PATHS:
        command = [sys.executable, __file__, "--path", path, "--texts", str(args.texts)]
        output = subprocess.run(
            [*command, "--threads", str(args.threads)], check=True, capture_output=True, text=True
        ).stdout
        results[path] = json.loads(output.strip().splitlines()[-1])
    fp32_labels, int8_labels = results["fp32"].pop("labels"), results["int8"].pop("labels")
    results["naive"].pop("labels")
    speed = {path: results[path]["texts_per_second"] for path in PATHS}
    report = {
        "texts": args.texts,
        "threads": args.threads,
        "cpus": os.cpu_count(),
        "load_average_before": round(load_before, 2),
        "load_average_after": round(os.getloadavg()[0], 2),
        "paths": results,
        "ratios": {
            "int8_vs_naive": round(speed["int8"] / speed["naive"], 2),
            "fp32_vs_naive": round(speed["fp32"] / speed["naive"], 2),
            "int8_vs_fp32": round(speed["int8"] / speed["fp32"], 2),
        },
        "int8_fp32_label_agreement": round(
            sum(a == b for a, b in zip(fp32_labels, int8_labels, strict=True)) / len(fp32_labels), 4
        ),
    }
    report["goals"] = {
        "int8_at_least_5x_naive": report["ratios"]["int8_vs_naive"] >= 5,
        "int8_at_least_600_texts_per_second": speed["int8"] >= 600,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(
        f"{args.texts} tweet-length texts, {args.threads} threads on {os.cpu_count()} CPUs "
        f"(load average {report['load_average_before']} before, {report['load_average_after']} after)"
    )
    print(f"{'path':<8}{'texts/s':>10}{'seconds':>10}{'peak RSS MB':>14}{'vs naive':>10}")
    for path in PATHS:
        row = results[path]
        ratio = speed[path] / speed["naive"]
        print(
            f"{path:<8}{row['texts_per_second']:>10.1f}{row['seconds']:>10.2f}"
            f"{row['peak_rss_mb']:>14.0f}{ratio:>9.2f}x"
        )
    print(
        f"int8 vs fp32: {report['ratios']['int8_vs_fp32']:.2f}x; same labels on "
        f"{100 * report['int8_fp32_label_agreement']:.1f} % of texts"
    )
    for goal, met in report["goals"].items():
        print(f"goal {goal}: {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
