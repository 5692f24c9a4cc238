"""Normalising a post before fingerprinting: disguised copies fold to the same words, names are masked."""

from __future__ import annotations

from cases.fingerprint import MASK, normalise, similarity

NAMED = "Dr {name} at {practice}"
ALLEGATION = " misdiagnosed my son and then covered it up. Do NOT trust this doctor!"
AMIRA = ["Amira Hassan", "Alice Road Surgery"]
BENEDICT = ["Benedict Osei", "Bob Lane Practice"]
CYRILLIC = str.maketrans({"a": "\u0430", "o": "\u043e", "e": "\u0435", "c": "\u0441"})


def about(names: list[str], allegation: str = ALLEGATION) -> str:
    """The allegation about a doctor and their practice (the names as the matcher found them)."""
    return NAMED.format(name=names[0], practice=names[1]) + allegation


def zero_width(text: str) -> str:
    """A zero-width space after every fourth character, as spam tools insert them."""
    return "\u200b".join(text[i : i + 4] for i in range(0, len(text), 4))


def test_copies_disguised_with_look_alike_letters_or_zero_width_spaces_fold_to_the_same_words() -> None:
    plain = normalise(about(AMIRA), AMIRA)
    for disguised in (zero_width(ALLEGATION), ALLEGATION.translate(CYRILLIC)):
        copy = about(BENEDICT, disguised)
        assert normalise(copy, BENEDICT) == plain
        assert similarity(normalise(copy, BENEDICT), plain) == 1.0
    assert plain == f"dr {MASK} at {MASK} misdiagnosed my son and then covered it up do not trust this dr"


def test_every_form_of_a_name_the_matcher_found_is_masked() -> None:
    """The collector stores a doctor named twice, in two forms, as "Dr Amira Hassan; Dr Hassan"."""
    text = "Dr Amira Hassan misdiagnosed my son and covered it up. Dr Hassan must be struck off, share this"
    normalised = normalise(text, ["Dr Amira Hassan; Dr Hassan"])
    assert "hassan" not in normalised and normalised.count(MASK) == 2
