from __future__ import annotations

from classifier.corpus import Example
from classifier.evaluate import baseline_reports


def test_the_baselines_are_profanity_check_for_abuse_and_vader_for_criticism_and_praise() -> None:
    examples = [
        Example("you stupid fucking twat", ("abusive",)),
        Example("Thank you so much Dr Okafor, wonderful kind care", ("praise",)),
        Example("Terrible, rude and dismissive. Awful service", ("critical",)),
        Example("Flu clinic on Saturday from 9", ()),
    ]
    reports = baseline_reports(examples)
    assert reports["profanity_check"]["labels"]["abusive"]["tp"] == 1
    assert reports["profanity_check"]["labels"]["abusive"]["fp"] == 0
    vader = reports["vader"]["labels"]
    assert vader["praise"]["tp"] == 1 and vader["critical"]["tp"] == 1
    assert set(reports["vader"]) == {"macro_f1", "exact_match", "labels"}
