"""The four labels a mention can carry (multi-label; none of them means neutral)."""

from __future__ import annotations

from typing import Final

LABELS: Final = ("threat", "abusive", "critical", "praise")
FLAGGED: Final = ("threat", "abusive", "critical")
NEUTRAL: Final = "neutral"
# Classification.model_id of labels a person set (classifier.review): no model replaces them.
REVIEWED: Final = "reviewed"


def sureness(model_id: str | None, scores: dict[str, float] | None, label: str) -> float:
    """How sure a label is, to put the surest first: a label a person set is sure; otherwise the
    model's score (a corrected post's score is what they corrected, often near 0)."""
    if model_id == REVIEWED:
        return 1.0
    return float((scores or {}).get(label) or 0.0)
