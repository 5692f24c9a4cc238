"""Normalisation: every evasion and spelling variant folds to the register's form, with the way back."""

from __future__ import annotations

import random

import pytest

from collector.normalise import fold, has_at_letter, has_leet_one, normalise

FOLDS = [
    # case, punctuation and whitespace
    ("DR SMITH", "dr smith"),
    ("Dr.  Smith!!", "dr smith"),
    ("Dr.Smith, Leeds", "dr smith leeds"),
    ("\tDr\nSmith  ", "dr smith"),
    # the forms of "Dr"
    ("Doctor Smith", "dr smith"),
    ("DOCTOR smith", "dr smith"),
    ("the doctor's receptionist", "the dr receptionist"),
    # possessives
    ("Dr Smith's surgery", "dr smith surgery"),
    ("Dr Smith’s surgery", "dr smith surgery"),
    ("the Smiths' house", "the smiths' house"),
    ("Dr Jones' patients", "dr jones' patients"),
    # apostrophes inside names
    ("Dr O'Neill", "dr oneill"),
    ("Dr O’Neill", "dr oneill"),
    ("Dr ONeill", "dr oneill"),
    # Unicode compatibility forms and accents
    ("Ｄｒ Ｓｍｉｔｈ", "dr smith"),
    ("𝐃𝐫 𝐒𝐦𝐢𝐭𝐡", "dr smith"),
    ("José Pérez", "jose perez"),
    ("Jose\u0301 Pe\u0301rez", "jose perez"),
    ("Zoë Brontë", "zoe bronte"),
    ("Søren Łukasz", "soren lukasz"),
    ("Straße", "strasse"),
    # zero-width and bidi controls
    ("Sm\u200bith", "smith"),
    ("S\u200dm\u200ci\ufeffth", "smith"),
    ("Dr \u202eSmith\u202c", "dr smith"),
    ("Smi\u00adth", "smith"),
    ("Nor\u3164cross", "norcross"),  # a Hangul filler: a letter that renders as nothing
    # Cyrillic and Greek look-alikes
    ("Ѕmіth", "smith"),
    ("Dr Ѕmіth", "dr smith"),
    ("ΚΑΝΕ", "kane"),
    ("Рерре", "peppe"),
    ("Norcrօss", "norcross"),  # Armenian o
    # Latin small capitals, which Unicode does not decompose
    ("ᴅʀ ɴᴏʀᴄʀᴏꜱꜱ", "dr norcross"),
    ("Dr ꜱᴍɪᴛʜ", "dr smith"),
    # leetspeak inside words
    ("Sm1th", "smith"),
    ("5m1th", "smith"),
    ("J0hn Sm17h", "john smith"),
    ("K4n3", "kane"),
    ("Sm!th", "smith"),
    ("$mith", "smith"),
    # ...but not where it is not leetspeak
    ("Smith!", "smith"),
    ("GMC 7000001", "gmc 7000001"),
    ("GMC7000001", "gmc7000001"),
    ("b12 and m1", "b12 and m1"),
    ("@drsmith1", "@drsmith1"),
    ("£5 at 10", "5 at 10"),
    # handles keep their "@"; other punctuation separates
    ("@DrDanSmith hi", "@drdansmith hi"),
    ("@dr_dan", "@dr_dan"),
    ("@helen@mastodon.social", "@helen @mastodon social"),
    ("heleningram.bsky.social", "heleningram bsky social"),
    ("u/DrSmith", "u drsmith"),
    # an "@" between the letters of a name reads as a letter ("a" here; the matcher also tries "o")
    ("Dr P@tel", "dr patel"),
    ("Dr Sm@ll.", "dr small"),
    ("N@rcross Surgery", "narcross surgery"),
    ("DR N@RCROSS", "dr narcross"),
    ("Dr N\uff20rcross", "dr narcross"),  # a full-width "@"
    ("x@drpriya", "xadrpriya"),  # not a handle: nothing may stand before a handle's "@"
    # ...and next to a leetspeak digit, two letters in a row stand in for others ("@" for "a", "7" for "t")
    ("Dr P@7el", "dr patel"),
    ("Ｐ＠７ｅｌ", "patel"),  # full-width
    ("Dr P@7el's patients", "dr patel patients"),
    # ...but handles, Mastodon and email addresses, and "at" before a capital keep their "@"
    ("@NorcrossSurgery", "@norcrosssurgery"),
    ("@drpriya@mastodon.social", "@drpriya @mastodon social"),
    ("@drpriya@mastodon…", "@drpriya @mastodon"),  # cut short: still a handle
    ("drpriya@mastodon.social", "drpriya @mastodon social"),
    ("evil.drpriya.bsky.social", "evil drpriya bsky social"),
    ("reception@norcross-surgery.nhs.uk", "reception @norcross-surgery nhs uk"),
    ("j.smith@nhs.net", "j smith @nhs net"),
    ("Dr Smith@Meanwood", "dr smith @meanwood"),
    ("x@DrPriya", "x @drpriya"),
    # ...and so do handles, addresses, times and prices beside a digit: no letter on both sides
    ("@7news", "@7news"),
    ("@7pm", "@7pm"),
    ("RT @7news: storm", "rt @7news storm"),
    ("p@7el.nhs.uk", "p @7el nhs uk"),
    ("raj@7eleven.com", "raj @7eleven com"),
    ("2@7pm", "2 @7pm"),
    ("see you@7pm", "see you @7pm"),
    ("see you@5AM!", "see you @5am"),
    ("3@5 each", "3 @5 each"),
    ("2 for £5@tesco", "2 for 5 @tesco"),
    ("room 2@7b", "room 2 @7b"),
    ("b@2", "b @2"),  # "2" stands for no letter
    ("7@ylor", "7 @ylor"),  # a digit first, as in a price ("5@tesco"): no letter before it
    # a hyphen joins words; on its own it separates them
    ("Smith-Jones", "smith-jones"),
    ("Dr Smith - Jones", "dr smith jones"),
    ("Dr Smith- Jones", "dr smith jones"),
    ("", ""),
    ("!!! ...", ""),
]


@pytest.mark.parametrize(("text", "expected"), FOLDS)
def test_it_folds_every_variant_to_the_plain_form(text: str, expected: str) -> None:
    assert fold(text) == expected


@pytest.mark.parametrize(("text", "expected"), FOLDS)
def test_normalise_gives_the_same_text_as_fold(text: str, expected: str) -> None:
    assert normalise(text).text == fold(text) == expected


def test_a_leetspeak_one_can_also_read_as_l() -> None:
    assert fold("He1en") == "heien"
    assert fold("He1en", one="l") == "helen"
    assert has_leet_one("He1en Ingram")
    assert not has_leet_one("seen at 10 on 1 May")


def test_an_at_sign_in_a_name_can_also_read_as_o_or_as_a_word_break() -> None:
    assert fold("Dr N@rcross") == "dr narcross"
    assert fold("Dr N@rcross", at="o") == normalise("Dr N@rcross", at="o").text == "dr norcross"
    assert fold("Dr Smith@meanwoodgp", at="@") == "dr smith @meanwoodgp"
    assert has_at_letter("Dr N@rcross")
    assert not has_at_letter("@drpriya@mastodon.social, j.smith@nhs.net, Dr Smith@Meanwood, me @ 5")
    assert has_at_letter("Dr P@7el")
    assert not has_at_letter("@7news at 2@7pm, you@7pm, 3@5, £5@tesco, p@7el.nhs.uk")


SPANS = [
    # (post, normalised words, the original text they came from)
    ("Hello Dr. Ѕmіth's place", "dr smith", "Dr. Ѕmіth"),
    ("Doctor Smith was late", "dr smith", "Doctor Smith"),
    ("I saw Jose\u0301 today", "jose", "Jose\u0301"),
    ("S\u200bmith 😡 and Dr Patel", "dr patel", "Dr Patel"),
    ("😡😡 Sm1th!!", "smith", "Sm1th"),
    ("Straße", "strasse", "Straße"),
    ("ＤＲ　ＳＭＩＴＨ", "dr smith", "ＤＲ　ＳＭＩＴＨ"),
    ("the Smiths' dog", "smiths'", "Smiths'"),
    ("Dr O'Neill's clinic", "dr oneill", "Dr O'Neill"),
    ("Dr N@rcross was rude", "dr narcross", "Dr N@rcross"),
    ("😡 Ｄｒ Ｐ＠ｔｅｌ's list", "dr patel", "Ｄｒ Ｐ＠ｔｅｌ"),
    ("Hi Dr P@7el!", "dr patel", "Dr P@7el"),
]


@pytest.mark.parametrize(("text", "words", "original"), SPANS)
def test_it_maps_a_normalised_span_back_to_the_original_text(text: str, words: str, original: str) -> None:
    normalised = normalise(text)
    start = normalised.text.index(words)
    assert normalised.original_text(start, start + len(words)) == original


def test_a_span_must_start_and_end_inside_words() -> None:
    normalised = normalise("Dr Smith")
    with pytest.raises(IndexError):
        normalised.span(2, 5)
    with pytest.raises(IndexError):
        normalised.span(0, 99)


def test_the_fast_fold_and_the_mapped_normalise_always_agree() -> None:
    """fold() runs on every post and normalise() only on hits: they must never disagree."""
    alphabet = [*"abcdeDrSmith '’-@.,!$|_015 \t\n", "\u00a0", "\u200b", "é", "\u0301", "Ѕ", "ß", "ﬁ", "😡"]
    alphabet += ["\u2028", "\x1c", "Ｓ", "’s", "s'", "doctor", "Doctor's", "＠", "A"]
    rng = random.Random(42)
    for _ in range(3_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        for one, at in (("i", "a"), ("l", "a"), ("i", "o"), ("i", "@")):
            assert normalise(text, one, at).text == fold(text, one, at), repr(text)
            normalised = normalise(text, one, at)
            for start in range(len(normalised.text)):
                if normalised.text[start] != " ":
                    first, stop = normalised.span(start, start + 1)
                    assert 0 <= first < stop <= len(text)
