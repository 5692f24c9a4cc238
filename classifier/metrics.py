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


def f_beta(tp: int, fp: int, fn: int, beta: float = 1.0) -> float:
    """F-beta: beta > 1 weighs recall beta times as much as precision."""
    precision, recall, _ = prf(tp, fp, fn)
    if not precision + recall:
        return 0.0
    return (1 + beta**2) * precision * recall / (beta**2 * precision + recall)


def choose_threshold(gold: np.ndarray, scores: np.ndarray, beta: float = 1.0) -> float:
    """The threshold with the best F-beta on this data (the middle of a plateau of equal scores).

    ``beta=1`` balances precision and recall; for threats, where a miss is the worst failure,
    a larger beta buys recall with some precision.
    """
    values = []
    for threshold in GRID:
        c = counts(gold, scores >= threshold)
        values.append(f_beta(c["tp"], c["fp"], c["fn"], beta))
    best = max(values)
    plateau = [t for t, value in zip(GRID, values, strict=True) if value >= best - 1e-9]
    return float(round(float(np.median(plateau)), 2))


def choose_thresholds(
    gold: np.ndarray, scores: np.ndarray, betas: Mapping[str, float], labels: Sequence[str] = LABELS
) -> dict[str, float]:
    return {
        label: choose_threshold(gold[:, column], scores[:, column], betas.get(label, 1.0))
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
