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


def choose_threshold(gold: np.ndarray, scores: np.ndarray) -> float:
    """The threshold with the best F1 on this data (the middle of a plateau of equal scores)."""
    values = []
    for threshold in GRID:
        c = counts(gold, scores >= threshold)
        values.append(prf(c["tp"], c["fp"], c["fn"])[2])
    best = max(values)
    plateau = [t for t, value in zip(GRID, values, strict=True) if value >= best - 1e-9]
    return float(round(float(np.median(plateau)), 2))


def threshold_for_recall(gold: np.ndarray, scores: np.ndarray, min_recall: float) -> float:
    """The threshold with the best precision among those that keep at least ``min_recall``.

    For threats a miss is the worst failure, so recall is the constraint and precision what is
    left to win; among equally precise thresholds the highest is taken (fewest alerts).
    """
    best: tuple[float, float] = (-1.0, float(GRID[0]))
    for threshold in GRID:
        c = counts(gold, scores >= threshold)
        precision, recall, _ = prf(c["tp"], c["fp"], c["fn"])
        if recall >= min_recall and (precision, float(threshold)) >= best:
            best = (precision, float(threshold))
    return round(best[1], 2)


def choose_thresholds(
    gold: np.ndarray,
    scores: np.ndarray,
    min_recall: Mapping[str, float],
    labels: Sequence[str] = LABELS,
) -> dict[str, float]:
    """Per label: the best F1, or for labels given a minimum recall, the best precision keeping it."""
    return {
        label: threshold_for_recall(gold[:, column], scores[:, column], min_recall[label])
        if label in min_recall
        else choose_threshold(gold[:, column], scores[:, column])
        for column, label in enumerate(labels)
    }


def apply_thresholds(
    scores: np.ndarray, thresholds: Mapping[str, float], labels: Sequence[str] = LABELS
) -> np.ndarray:
    return scores >= np.array([thresholds[label] for label in labels])


# What each functional test checks, as HateCheck scores it: the label decision(s) the cases were
# written to probe (e.g. that a quote of abuse is not itself flagged as abuse). Functions not named
# here are scored on the whole label set.
FOCUS: dict[str, tuple[str, ...]] = {
    "counter_speech": ("threat", "abusive"),
    "quoting": ("threat", "abusive"),
    "idiom_hyperbole": ("threat",),
    "reporting_vs_threatening": ("threat",),
    "violent_medical_language": ("threat",),
    "threat_at_end_of_long_text": ("threat",),
    "obfuscated_spelling": ("abusive",),
    "profanity_not_aimed": ("abusive",),
    "praise_with_swearing": ("abusive", "praise"),
    "negation": ("abusive", "critical", "praise"),
    "sarcasm": ("critical", "praise"),
    "mixed_praise_and_criticism": ("critical", "praise"),
}


def function_report(
    functions: Sequence[str], gold: np.ndarray, predicted: np.ndarray, labels: Sequence[str] = LABELS
) -> dict[str, dict[str, Any]]:
    """Accuracy per functional test, on its focus labels and (strict) on the whole label set."""
    strict = np.all(gold == predicted, axis=1)
    report: dict[str, dict[str, Any]] = {}
    for name in sorted(set(functions)):
        mask = np.array([function == name for function in functions])
        focus = [label for label in FOCUS.get(name, tuple(labels)) if label in labels]
        columns = [labels.index(label) for label in focus]
        focal = np.all(gold[:, columns] == predicted[:, columns], axis=1)
        total = int(np.sum(mask))
        hits, strict_hits = int(np.sum(focal & mask)), int(np.sum(strict & mask))
        report[name] = {
            "focus": focus,
            "correct": hits,
            "total": total,
            "accuracy": round(hits / total, 4),
            "strict_correct": strict_hits,
            "strict_accuracy": round(strict_hits / total, 4),
        }
    return report
