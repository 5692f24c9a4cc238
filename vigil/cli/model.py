"""``vigil model``: split the corpus, train, evaluate and re-apply the classifier; ``vigil classify``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from vigil.cli.common import console, new_app, runtime
from vigil.labels import LABELS

app = new_app("Train, evaluate and apply the classifier that labels mentions.")
CORPUS_OPTION = typer.Option(None, "--corpus", help="Corpus folder (default: the bundled classifier/corpus).")


def progress_bar() -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


@app.command()
def split(
    corpus: Path = typer.Option(
        None, "--corpus", help="Corpus folder (default: the bundled classifier/corpus)."
    ),
) -> None:
    """Split the hand-labelled parts into train/dev/test files, near-duplicates kept together."""
    from classifier.corpus import CORPUS_DIR, label_counts, split_corpus

    result = split_corpus(corpus or CORPUS_DIR)
    table = Table("Set", "Examples", *LABELS, "neutral", title="Corpus splits", title_justify="left")
    for name, examples in result.items():
        counts = label_counts(examples)
        table.add_row(name, str(len(examples)), *(str(counts[label]) for label in [*LABELS, "neutral"]))
    console.print(table)


@app.command()
def train(
    ctx: typer.Context,
    force: bool = typer.Option(False, "--force", help="Retrain even if the cache holds this model."),
    corpus: Path = typer.Option(
        None, "--corpus", help="Corpus folder (default: the bundled classifier/corpus)."
    ),
) -> None:
    """Fine-tune the classifier on the corpus (reused from the cache when nothing changed)."""
    from classifier.corpus import CORPUS_DIR
    from classifier.meta import read_meta
    from classifier.train import ensure_model

    settings = runtime(ctx).settings
    with progress_bar() as progress:
        model_dir, trained = ensure_model(settings, corpus or CORPUS_DIR, force=force, progress=progress)
    meta = read_meta(model_dir)
    how = f"trained in {meta['total_seconds']} s" if trained else "reused from the cache"
    precision = "int8" if meta["int8_ok"] else "fp32"
    test = meta["metrics"][precision]["test"]
    console.print(f"Model {meta['version']} {how}; installed in {model_dir}.")
    threat = test["labels"]["threat"]
    console.print(
        f"Test split ({precision}): macro-F1 {test['macro_f1']:.3f}; "
        f"threat recall {threat['recall']:.3f} at precision {threat['precision']:.3f}."
    )
    console.print(f"Model card: {model_dir / 'README.md'}", soft_wrap=True)


@app.command("eval")
def evaluate(
    ctx: typer.Context,
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="Labelled JSONL file."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
) -> None:
    """Score the configured model on FILE, beside the profanity-check and VADER baselines."""
    from classifier.corpus import read_jsonl
    from classifier.evaluate import evaluate as run
    from classifier.model import get_classifier

    examples = read_jsonl(file)
    report = run(get_classifier(runtime(ctx).settings), examples)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    print_report(report, file)


def print_report(report: dict[str, Any], file: Path) -> None:
    model = report["model"]
    baselines = report["baselines"]
    console.print(
        f"{escape(str(file))}: {report['examples']} examples; model {escape(model['model_id'])} "
        f"version {escape(model['version'])}"
    )
    table = Table("Label", "Precision", "Recall", "F1", "profanity-check", "VADER", caption="Baselines: F1")
    for label, row in model["labels"].items():
        table.add_row(
            label,
            f"{row['precision']:.3f}",
            f"{row['recall']:.3f}",
            f"{row['f1']:.3f}",
            _baseline_f1(baselines["profanity_check"], label),
            _baseline_f1(baselines["vader"], label),
        )
    table.add_row(
        "macro",
        "",
        "",
        f"{model['macro_f1']:.3f}",
        f"{baselines['profanity_check']['macro_f1']:.3f} (abusive)",
        f"{baselines['vader']['macro_f1']:.3f} (crit., praise)",
        style="bold",
    )
    console.print(table)
    confusion = Table("Label", "Support", "TP", "FP", "FN", "TN", "Threshold", title="Confusion per label")
    for label, row in model["labels"].items():
        cells = [row["support"], row["tp"], row["fp"], row["fn"], row["tn"], model["thresholds"][label]]
        confusion.add_row(label, *(str(cell) for cell in cells))
    console.print(confusion)
    console.print(f"Exact label-set match: {model['exact_match']:.3f}")
    if "functions" in model:
        functions = Table(
            "Function",
            "Tests",
            "Correct",
            "Accuracy",
            "Strict",
            title="Functional tests (accuracy: the tested labels right; strict: the whole label set)",
        )
        for name, row in model["functions"].items():
            style = "red" if row["accuracy"] < 0.8 else None
            functions.add_row(
                escape(name),
                ", ".join(row["focus"]),
                f"{row['correct']}/{row['total']}",
                f"{100 * row['accuracy']:.1f} %",
                f"{100 * row['strict_accuracy']:.1f} %",
                style=style,
            )
        console.print(functions)


def _baseline_f1(report: dict[str, Any], label: str) -> str:
    row = report["labels"].get(label)
    return f"{row['f1']:.3f}" if row else "-"


def classify_mentions(ctx: typer.Context, *, reclassify: bool, limit: int | None) -> None:
    from classifier.model import get_classifier
    from classifier.step import classify_pending, count, stale, unclassified

    rt = runtime(ctx)
    classifier = get_classifier(rt.settings)
    with rt.transaction() as session:
        waiting = count(session, stale(classifier) if reclassify else unclassified())
    total = waiting if limit is None else min(waiting, limit)
    with progress_bar() as progress:
        task = progress.add_task("classifying", total=total)
        done = classify_pending(
            rt,
            classifier,
            reclassify=reclassify,
            limit=limit,
            on_batch=lambda n: progress.advance(task, n),
        )
    console.print(f"Labelled {done} mention(s) with {classifier.model_id} {classifier.version}.")


@app.command()
def reclassify(
    ctx: typer.Context,
    limit: int = typer.Option(None, "--limit", min=1, help="Stop after this many mentions."),
) -> None:
    """Re-label mentions labelled by another model or version (after a retrain or a model change).

    Mentions not labelled at all yet are labelled too.
    """
    classify_mentions(ctx, reclassify=True, limit=limit)


def classify(
    ctx: typer.Context,
    limit: int = typer.Option(None, "--limit", min=1, help="Stop after this many mentions."),
) -> None:
    """Label the mentions that have no labels yet (threat, abusive, critical, praise)."""
    classify_mentions(ctx, reclassify=False, limit=limit)
