from __future__ import annotations

import numpy as np

from classifier.metrics import as_matrix, choose_threshold, function_report, label_report, prf


def test_precision_recall_and_f1_follow_their_definitions() -> None:
    assert prf(tp=8, fp=2, fn=8) == (0.8, 0.5, 2 * 0.8 * 0.5 / 1.3)
    assert prf(tp=0, fp=0, fn=0) == (1.0, 1.0, 1.0)
    assert prf(tp=0, fp=0, fn=3) == (0.0, 0.0, 0.0)


def test_the_report_has_figures_and_confusion_counts_per_label_and_their_macro_f1() -> None:
    gold = as_matrix([["threat"], ["abusive", "critical"], [], ["praise"]])
    predicted = as_matrix([["threat"], ["abusive"], ["praise"], ["praise"]])
    report = label_report(gold, predicted)
    assert report["labels"]["threat"] == {
        "precision": 1.0,
        "recall": 1.0,
        "f1": 1.0,
        "support": 1,
        "tp": 1,
        "fp": 0,
        "fn": 0,
        "tn": 3,
    }
    assert report["labels"]["critical"]["recall"] == 0.0
    assert report["labels"]["praise"]["precision"] == 0.5
    assert report["macro_f1"] == round((1 + 1 + 0 + 2 / 3) / 4, 4)
    assert report["exact_match"] == 0.5


def test_a_threshold_is_chosen_for_the_best_f1() -> None:
    gold = np.array([True, True, True, False, False, False])
    scores = np.array([0.9, 0.8, 0.6, 0.4, 0.3, 0.1])
    assert 0.4 < choose_threshold(gold, scores) <= 0.6


def test_the_threat_threshold_keeps_the_recall_asked_for_even_at_some_cost_in_precision() -> None:
    gold = np.array([True, True, True, True, False, False, False, False])
    scores = np.array([0.95, 0.9, 0.85, 0.2, 0.3, 0.25, 0.22, 0.21])
    best_f1 = choose_threshold(gold, scores)
    high_recall = choose_threshold(gold, scores, beta=3.0)
    assert best_f1 > 0.3
    assert high_recall <= 0.2
    assert np.all(scores[gold] >= high_recall)


def test_functional_accuracy_counts_a_case_right_only_when_its_whole_label_set_is() -> None:
    gold = as_matrix([["praise"], ["praise", "critical"], [], []])
    predicted = as_matrix([["praise"], ["praise"], [], ["threat"]])
    report = function_report(["negation", "mixed", "medical", "medical"], gold, predicted)
    assert report == {
        "medical": {"correct": 1, "total": 2, "accuracy": 0.5},
        "mixed": {"correct": 0, "total": 1, "accuracy": 0.0},
        "negation": {"correct": 1, "total": 1, "accuracy": 1.0},
    }
