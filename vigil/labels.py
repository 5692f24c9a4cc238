"""The four labels a mention can carry (multi-label; none of them means neutral)."""

from __future__ import annotations

from typing import Final

LABELS: Final = ("threat", "abusive", "critical", "praise")
FLAGGED: Final = ("threat", "abusive", "critical")
NEUTRAL: Final = "neutral"
# Classification.model_id of labels a person set (classifier.review): no model replaces them.
REVIEWED: Final = "reviewed"
