from __future__ import annotations

import pytest

from cases.views import explain, odds
from vigil.models import Case, CaseReason


@pytest.mark.parametrize(
    ("probability", "words"),
    [
        (0.5, "about 1 time in 2"),
        (0.9, "more often than not"),
        (0.00049, "about 1 time in 2,000"),
        (0.0000033, "about 1 time in 300,000"),
        (1.3e-12, "less than 1 time in a million"),
        (0.0, "less than 1 time in a million"),
    ],
)
def test_a_chance_reads_as_odds(probability: float, words: str) -> None:
    assert odds(probability) == words


def test_a_pile_on_is_explained_in_words_a_case_handler_reads() -> None:
    case = Case(
        reason=CaseReason.PILE_ON,
        details={"authors": 6, "hours": 6, "expected": 0.35, "tail_probability": 1.3e-12},
    )
    assert explain(case) == [
        "6 accounts posted flagged mentions within 6 hours.",
        "Usually 0.35 such accounts in 6 hours; this many would come by chance less than 1 time in a million.",
    ]
