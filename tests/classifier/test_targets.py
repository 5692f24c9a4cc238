"""The one slow test: the real model, trained from the committed corpus (or reused from the
per-machine cache), is measured on the test split, the functional set and the held-out set.

It fails if the model falls below the floor the current model reaches (a regression), and it
reports as xfail, with the figures, while the issue's targets (macro-F1 >= 0.85, threat recall
>= 0.90 at precision >= 0.80, every functional test >= 80 % correct on the labels it tests) are
not all met yet; it passes once they are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from classifier.corpus import CORPUS_DIR, read_jsonl
from classifier.evaluate import model_report
from classifier.model import load_classifier
from classifier.train import ensure_model
from vigil.settings import load_settings

# (macro-F1, threat recall) the current model reaches (test 0.890, 0.91; functional 0.860, 0.85;
# held-out 0.909, 0.97), less a margin: training on other CPUs' arithmetic varies as much as another
# seed does (seed 43 gave dev 0.900 against 0.907 for seed 42; an earlier model, trained
# in fp32 where the CPU has no native bfloat16, reached test 0.880, functional 0.858, held-out 0.894;
# this one, trained in fp32 on an AVX2-only CPU, test 0.875, 0.89; functional 0.838; held-out 0.887, 0.99;
# in int8 there, test 0.878, 0.90; functional 0.842, 0.83; held-out 0.888, 0.99).
FLOOR = {"test": (0.85, 0.88), "functional": (0.80, 0.78), "held-out": (0.85, 0.91)}


SETS = {
    "test": CORPUS_DIR / "test.jsonl",
    "functional": CORPUS_DIR / "functional.jsonl",
    "held-out": CORPUS_DIR / "heldout" / "independent.jsonl",
}


def shortfalls(name: str, report: dict[str, Any]) -> list[str]:
    threat = report["labels"]["threat"]
    missed = []
    if report["macro_f1"] < 0.85:
        missed.append(f"{name} macro-F1 {report['macro_f1']:.3f} < 0.85")
    if threat["recall"] < 0.90 or threat["precision"] < 0.80:
        missed.append(f"{name} threat recall {threat['recall']:.3f} at precision {threat['precision']:.3f}")
    for function, row in report.get("functions", {}).items():
        if row["accuracy"] < 0.8:
            missed.append(f"{function} {100 * row['accuracy']:.0f} % < 80 %")
    return missed


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_the_trained_model_meets_its_targets_on_the_test_functional_and_held_out_sets(tmp_path: Path) -> None:
    settings = load_settings(environ={}).with_overrides(classifier__model_dir=str(tmp_path / "model"))
    ensure_model(settings)
    classifier = load_classifier(settings)
    missed: list[str] = []
    for name, path in SETS.items():
        report = model_report(classifier, read_jsonl(path))
        macro_f1, threat_recall = FLOOR[name]
        assert report["macro_f1"] >= macro_f1, (name, report)
        assert report["labels"]["threat"]["recall"] >= threat_recall, (name, report["labels"]["threat"])
        missed += shortfalls(name, report)
    if missed:
        pytest.xfail("issue targets not met yet: " + "; ".join(missed))
