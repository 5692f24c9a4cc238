from __future__ import annotations

import numpy as np

from classifier.metrics import (
    as_matrix,
    choose_threshold,
    function_report,
    label_report,
    prf,
    threshold_for_recall,
)


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


def test_the_threat_threshold_is_the_most_precise_one_that_keeps_the_recall_asked_for() -> None:
    gold = np.array([True, True, True, True, False, False, False, False])
    scores = np.array([0.95, 0.9, 0.85, 0.2, 0.3, 0.25, 0.22, 0.21])
    assert choose_threshold(gold, scores) > 0.3
    threshold = threshold_for_recall(gold, scores, min_recall=0.9)
    assert np.all(scores[gold] >= threshold)
    assert threshold == 0.2  # the highest that still catches the fourth threat


def test_recall_is_traded_only_as_far_as_asked() -> None:
    gold = np.array([True, True, True, True, False, False, False, False])
    scores = np.array([0.95, 0.9, 0.85, 0.2, 0.3, 0.25, 0.22, 0.21])
    assert threshold_for_recall(gold, scores, min_recall=0.75) == 0.85


def test_functional_accuracy_scores_the_tested_labels_and_strict_accuracy_the_whole_set() -> None:
    gold = as_matrix([["praise"], ["praise", "critical"], [], [], ["critical"]])
    predicted = as_matrix([["praise"], ["praise"], [], ["threat"], ["critical", "praise"]])
    functions = [
        "negation",
        "mixed_praise_and_criticism",
        "violent_medical_language",
        "violent_medical_language",
        "made_up_function",
    ]
    report = function_report(functions, gold, predicted)
    assert report["violent_medical_language"] == {
        "focus": ["threat"],
        "correct": 1,
        "total": 2,
        "accuracy": 0.5,
        "strict_correct": 1,
        "strict_accuracy": 0.5,
    }
    assert report["mixed_praise_and_criticism"]["accuracy"] == 0.0
    assert report["negation"]["accuracy"] == 1.0
    unknown = report["made_up_function"]
    assert unknown["focus"] == ["threat", "abusive", "critical", "praise"]
    assert unknown["accuracy"] == unknown["strict_accuracy"] == 0.0


def test_a_function_is_right_on_its_focus_even_when_another_label_is_wrong() -> None:
    gold = as_matrix([["threat", "critical"]])
    predicted = as_matrix([["threat"]])
    row = function_report(["reporting_vs_threatening"], gold, predicted)["reporting_vs_threatening"]
    assert (row["accuracy"], row["strict_accuracy"]) == (1.0, 0.0)
