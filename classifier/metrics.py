"""Scoring multi-label predictions, and choosing each label's threshold on the dev split."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from vigil.labels import LABELS

GRID = np.round(np.arange(0.02, 0.99, 0.01), 2)


def as_matrix(label_sets: Sequence[Sequence[str]], labels: Sequence[str] = LABELS) -> np.ndarray:
    """Label sets as a boolean matrix, one column per label."""
    return np.array([[label in row for label in labels] for row in label_sets], dtype=bool).reshape(
        len(label_sets), len(labels)
    )


def counts(gold: np.ndarray, predicted: np.ndarray) -> dict[str, int]:
    return {
        "tp": int(np.sum(gold & predicted)),
        "fp": int(np.sum(~gold & predicted)),
        "fn": int(np.sum(gold & ~predicted)),
        "tn": int(np.sum(~gold & ~predicted)),
    }


def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    """Precision, recall and F1; an empty denominator counts as perfect only when nothing was due."""
    precision = tp / (tp + fp) if tp + fp else float(fn == 0)
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def label_report(gold: np.ndarray, predicted: np.ndarray, labels: Sequence[str] = LABELS) -> dict[str, Any]:
    """Per-label precision, recall, F1 and confusion counts, and their macro-F1."""
    per_label: dict[str, dict[str, float | int]] = {}
    for column, label in enumerate(labels):
        c = counts(gold[:, column], predicted[:, column])
        precision, recall, f1 = prf(c["tp"], c["fp"], c["fn"])
        per_label[label] = {
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(f1, 4),
            "support": c["tp"] + c["fn"],
            **c,
        }
    macro = float(np.mean([row["f1"] for row in per_label.values()])) if per_label else 0.0
    exact = float(np.mean(np.all(gold == predicted, axis=1))) if len(gold) else 0.0
    return {"macro_f1": round(macro, 4), "exact_match": round(exact, 4), "labels": per_label}


def f1_at(gold: np.ndarray, scores: np.ndarray, threshold: float) -> tuple[float, float, float]:
    return prf(**{k: v for k, v in counts(gold, scores >= threshold).items() if k != "tn"})


def choose_threshold(gold: np.ndarray, scores: np.ndarray, min_recall: float | None = None) -> float:
    """The threshold with the best F1 on this data (the middle of a plateau of equal F1s).

    With ``min_recall`` (for threats, where a miss is the worst failure), the best F1 among the
    thresholds that keep at least that recall.
    """
    rows = [(t, *f1_at(gold, scores, t)) for t in GRID]
    if min_recall is not None:
        kept = [row for row in rows if row[2] >= min_recall]
        rows = kept or [max(rows, key=lambda row: (row[2], row[0]))]
    best = max(row[3] for row in rows)
    plateau = [row[0] for row in rows if row[3] >= best - 1e-9]
    return float(round(float(np.median(plateau)), 2))


def choose_thresholds(
    gold: np.ndarray, scores: np.ndarray, min_recall: Mapping[str, float], labels: Sequence[str] = LABELS
) -> dict[str, float]:
    return {
        label: choose_threshold(gold[:, column], scores[:, column], min_recall.get(label))
        for column, label in enumerate(labels)
    }


def apply_thresholds(
    scores: np.ndarray, thresholds: Mapping[str, float], labels: Sequence[str] = LABELS
) -> np.ndarray:
    return scores >= np.array([thresholds[label] for label in labels])


def function_report(
    functions: Sequence[str], gold: np.ndarray, predicted: np.ndarray
) -> dict[str, dict[str, float | int]]:
    """Accuracy per functional test: a case is correct when its whole label set is right."""
    correct = np.all(gold == predicted, axis=1)
    report: dict[str, dict[str, float | int]] = {}
    for name in sorted(set(functions)):
        mask = np.array([function == name for function in functions])
        hits = int(np.sum(correct & mask))
        total = int(np.sum(mask))
        report[name] = {"correct": hits, "total": total, "accuracy": round(hits / total, 4)}
    return report
