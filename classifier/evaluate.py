"""Honest evaluation: the model's figures on a labelled file, beside two off-the-shelf baselines.

The baselines are what a team would reach for without Vigil's model: alt-profanity-check (a
linear model of profanity) for ``abusive``, and VADER's compound sentiment for ``critical``
(compound <= -0.05) and ``praise`` (>= 0.05), the cut-offs its authors recommend.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from classifier.corpus import Example
from classifier.metrics import apply_thresholds, as_matrix, function_report, label_report
from classifier.model import Classifier

VADER_CUTOFF = 0.05


def scored_report(
    examples: Sequence[Example], scores: np.ndarray, thresholds: Mapping[str, float], labels: Sequence[str]
) -> dict[str, Any]:
    """Per-label figures (and per-function accuracy for functional cases) from model scores."""
    gold = as_matrix([example.labels for example in examples], labels)
    predicted = apply_thresholds(scores, thresholds, labels)
    report = label_report(gold, predicted, labels)
    functions = [example.function or "" for example in examples]
    if any(functions):
        report["functions"] = function_report(functions, gold, predicted, labels)
    return report


def model_report(classifier: Classifier, examples: Sequence[Example]) -> dict[str, Any]:
    scores = classifier.scores([example.text for example in examples])
    report = scored_report(examples, scores, classifier.thresholds, classifier.labels)
    return {
        "model_id": classifier.model_id,
        "version": classifier.version,
        "thresholds": classifier.thresholds,
        **report,
    }


def baseline_reports(examples: Sequence[Example]) -> dict[str, Any]:
    texts = [example.text for example in examples]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its pickled scikit-learn model warns about versions
        from profanity_check import predict_prob

        profane = np.asarray(predict_prob(texts)) >= 0.5
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyser = SentimentIntensityAnalyzer()
    compound = np.array([analyser.polarity_scores(text)["compound"] for text in texts])
    gold = as_matrix([example.labels for example in examples], ("abusive", "critical", "praise"))
    vader = np.stack([compound <= -VADER_CUTOFF, compound >= VADER_CUTOFF], axis=1)
    return {
        "profanity_check": label_report(gold[:, :1], profane.reshape(-1, 1), ("abusive",)),
        "vader": label_report(gold[:, 1:], vader, ("critical", "praise")),
    }


def evaluate(classifier: Classifier, examples: Sequence[Example]) -> dict[str, Any]:
    """The configured model and both baselines on the same examples."""
    return {
        "examples": len(examples),
        "model": model_report(classifier, examples),
        "baselines": baseline_reports(examples),
    }
