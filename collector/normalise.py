"""Normalisation of post text and register names before matching.

Abusers dodge keyword filters with accents, full-width or "mathematical" letters, Cyrillic and
Greek look-alikes ("Ѕmіth"), zero-width characters and leetspeak ("Sm1th"); people write "Dr.",
"DR" or "Doctor", and "Smith's". Both the register's names and each post are folded to the same
plain form — lower-case ASCII-ish words separated by single spaces — so that one exact
multi-pattern search finds every variant.

The fold is two-stage and both stages are shared by :func:`fold` (fast, no offsets: run on every
post) and :func:`normalise` (keeps a map back to the original text: run only on posts that hit a
pattern), so the two always produce the same text:

0. an "@" between two letters of a word that is neither a handle nor an address (or between a
   letter and a leetspeak digit before a letter: "P@7el") is read as the letter ``at`` ("a" by
   default: "Dr P@tel"; the matcher also tries "o" for "N@rcross", and the "@" as it was); see
   :func:`read_at_signs`;
1. characters: compatibility decomposition (NFKD), combining marks dropped (accents), case
   folded, zero-width and bidi controls removed, look-alike letters mapped to Latin;
2. words (runs of letters, digits, ``'`` and leet symbols): possessive ``'s`` dropped, other
   apostrophes removed ("O'Neill" → "oneill"), leetspeak mapped inside words that have letters,
   "doctor" → "dr"; everything else separates words.

A plural possessive keeps its apostrophe ("smiths'"), so that the matcher can accept "Smith"
followed by "s'" while still refusing "Smiths" (another name). A hyphen between two words
stays ("smith-jones"), so that "Dr Smith-Jones" is not "Dr Smith"; the matcher also knows
hyphenated names without the hyphen.

An "@" elsewhere keeps its meaning: it starts a handle ("@drpriya", "@helen@mastodon.social")
and separates an address ("reception@norcross-surgery.nhs.uk" folds to "reception
@norcross-surgery nhs uk", as before, so the matcher can still tell a handle inside an address
from a mention). Between a small and a capital letter it is read as "at" ("Dr Smith@Meanwood").
Stage 0 replaces one character by one, so offsets into its output are offsets into the post.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

# Letters from other scripts that render like Latin letters (a subset of Unicode's confusables,
# the ones seen in filter evasion). Mapped before case folding, so capitals keep their shape:
# Greek capital Eta "Η" looks like H, its small form "η" like n.
HOMOGLYPHS: dict[str, str] = {
    # Cyrillic capitals and small letters
    "А": "a", "В": "b", "С": "c", "Е": "e", "Н": "h", "І": "i", "Ј": "j", "К": "k", "М": "m",
    "О": "o", "Р": "p", "Ѕ": "s", "Т": "t", "Х": "x", "У": "y", "Ү": "y", "Ԛ": "q", "Ԝ": "w",
    "Ӏ": "l", "Ё": "e", "Ї": "i",
    "а": "a", "в": "b", "с": "c", "ԁ": "d", "е": "e", "һ": "h", "і": "i", "ј": "j", "к": "k",
    "м": "m", "н": "h", "о": "o", "р": "p", "ѕ": "s", "т": "t", "х": "x", "у": "y", "ү": "y",
    "ԛ": "q", "ԝ": "w", "ӏ": "l", "ё": "e", "ї": "i", "ɡ": "g",
    # Greek capitals and small letters
    "Α": "a", "Β": "b", "Ε": "e", "Η": "h", "Ι": "i", "Κ": "k", "Μ": "m", "Ν": "n", "Ο": "o",
    "Ρ": "p", "Τ": "t", "Υ": "y", "Χ": "x", "Ζ": "z",
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p",
    "τ": "t", "υ": "u", "χ": "x",
    # Latin small capitals, which have no compatibility decomposition to fold: "ᴅʀ ꜱᴍɪᴛʜ"
    "ᴀ": "a", "ʙ": "b", "ᴄ": "c", "ᴅ": "d", "ᴇ": "e", "ꜰ": "f", "ɢ": "g", "ʜ": "h", "ɪ": "i",
    "ᴊ": "j", "ᴋ": "k", "ʟ": "l", "ᴍ": "m", "ɴ": "n", "ᴏ": "o", "ᴘ": "p", "ʀ": "r", "ꜱ": "s",
    "ᴛ": "t", "ᴜ": "u", "ᴠ": "v", "ᴡ": "w", "ʏ": "y", "ᴢ": "z",
    # Armenian small letters
    "օ": "o", "ս": "u", "հ": "h", "ո": "n",
}  # fmt: skip
# Hangul fillers: letters (not format characters) that render as nothing, used to split a name
# invisibly ("Nor\u3164cross").
_INVISIBLE_LETTERS = frozenset("\u115f\u1160\u3164\uffa0")

# Letters that carry no combining mark to strip but read as plain Latin letters.
_LATIN_EXTRA = {"ø": "o", "ł": "l", "đ": "d", "ı": "i", "æ": "ae", "œ": "oe", "þ": "th", "ð": "d", "ħ": "h"}
_APOSTROPHES = frozenset("’‘ʼ´′ʹ＇")
_LEET_DIGITS = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t"}
# Symbols only count as letters between two letters ("Sm!th"), never at a word's end ("Smith!");
# "$" also at a word's start ("$mith").
_LEET_SYMBOLS = {"$": "s", "!": "i", "|": "l"}
_TITLES = {"doctor": "dr"}

# "@" and its full-width and small forms, which NFKD folds to "@".
_AT_SIGNS = "@\uff20\ufe6b"
_WORD_CHARS = r"\w'$!|\-"
# A word with an "@" inside it ("N@rcross", "x@drpriya"), not starting with one (a handle,
# "@dr_n@me") and not followed by a domain (an address: "j.smith@nhs.net",
# "drpriya@mastodon.social").
_WORD_WITH_AT = re.compile(
    rf"(?<![{_WORD_CHARS}{_AT_SIGNS}])[{_WORD_CHARS}]+[{_AT_SIGNS}][{_WORD_CHARS}{_AT_SIGNS}]*"
    rf"(?![{_WORD_CHARS}{_AT_SIGNS}]|\.[^\W_])"
)
_LETTER = r"[^\W\d_]"
# The leetspeak digits, also full-width (NFKD folds them to ASCII after the "@" is read).
_LEET = "[013457\uff10\uff11\uff13\uff14\uff15\uff17]"
# An "@" with, on each side, a letter or a leetspeak digit and then a letter ("P@tel", "P@7el"),
# but not a time ("me@7pm").
_AT_AS_LETTER = re.compile(
    rf"(?:(?<={_LETTER})|(?<={_LETTER}{_LEET}))[{_AT_SIGNS}]"
    rf"(?={_LETTER}|{_LEET}(?!(?i:[ap]m)\b){_LETTER})"
)
# A word: letters, digits, apostrophes and leet symbols; a hyphen joins words ("Smith-Jones").
TOKEN = re.compile(r"@?[\w'$!|]+(?:-[\w'$!|]+)*")
_DIGIT_RUN = re.compile(r"\d{3}")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
# A "1" touching a letter: leetspeak that could stand for "i" or "l" ("Sm1th", "He1en").
LEET_ONE = re.compile(r"(?<=[^\W\d_])1|1(?=[^\W\d_])")


def read_at_signs(text: str, at: str = "a") -> str:
    """``text`` with each "@" that stands for a letter replaced by ``at``, one character for one.

    Abusers write "Dr P@tel" to dodge filters; the "@" may stand for "a" ("P@tel") or, by its
    round shape, "o" ("N@rcross"). It may also be a word break after all ("Dr
    Smith@meanwoodgp"), which ``at="@"`` keeps. The matcher tries all three readings. Only an
    "@" inside a word that is neither a handle nor an address counts, with a letter on each side
    or a leetspeak digit and then a letter ("P@7el": two letters in disguise in a row), and not
    one between a small and a capital letter, which reads as "at" ("Dr Smith@Meanwood"). A digit
    with no letter beyond it is a number, not a letter ("2@7pm", "£5@tesco"), and so is one before
    "am" or "pm" ("me@7pm"). Done before case folding (it needs the case) and without changing
    the length, so offsets need no map.
    """
    if at == "@" or not _has_at_in_word(text):
        return text  # most posts, even with handles: a few fast scans
    return _WORD_WITH_AT.sub(lambda word: _at_as_letter(word.group(), at), text)


def _has_at_in_word(text: str) -> bool:
    """A quick test before the word regex, which costs more than a fold: ``fold`` runs on every
    post, and many carry a handle ("@drpriya ...")."""
    if "\uff20" in text or "\ufe6b" in text:
        return True  # a full-width or small "@": rare, left to the regex
    index = text.find("@", 1)
    while index != -1:
        if text[index - 1].isalnum() and _AT_AS_LETTER.match(text, index):  # most: a space before
            return True
        index = text.find("@", index + 1)
    return False


def _at_as_letter(word: str, at: str) -> str:
    """Replace the "@"s of one word that stand for a letter, except where a capital follows a
    small letter (a new word: "Smith@Meanwood")."""

    def letter(sign: re.Match[str]) -> str:
        camel = word[sign.start() - 1].islower() and word[sign.end()].isupper()
        return sign.group() if camel else at

    return _AT_AS_LETTER.sub(letter, word)


def has_at_letter(text: str) -> bool:
    """Whether ``text`` has an "@" that :func:`read_at_signs` reads as a letter."""
    if "@" not in text and "\uff20" not in text and "\ufe6b" not in text:
        return False  # most posts: three fast scans, no call
    return _has_at_in_word(text) and read_at_signs(text) != text


def _fold_char(char: str) -> str:
    """Fold one character: the first stage, shared by every path."""
    if char < "\x80":
        return char.lower()
    if char in HOMOGLYPHS:
        return HOMOGLYPHS[char]
    if char in _APOSTROPHES:
        return "'"
    category = unicodedata.category(char)
    if category == "Cf" or category.startswith("M") or char in _INVISIBLE_LETTERS:
        return ""  # zero-width, bidi controls, soft hyphen, fillers; combining marks (accents)
    if category == "Cc":
        return " "
    out = []
    for part in unicodedata.normalize("NFKD", char):
        if unicodedata.category(part).startswith("M"):
            continue
        for folded in part.casefold():
            out.append(HOMOGLYPHS.get(folded) or _LATIN_EXTRA.get(folded, folded))
    return "".join(out)


class _CharTable(dict[int, str]):
    """A ``str.translate`` table that folds each character the first time it is seen."""

    def __missing__(self, code: int) -> str:
        value = self[code] = _fold_char(chr(code))
        return value


_TABLE = _CharTable()


def _fold_chars(text: str) -> str:
    return text.lower() if text.isascii() else text.translate(_TABLE)


def _fold_chars_mapped(text: str) -> tuple[str, list[int] | None]:
    """The first stage with, per output character, the index it came from (None: the same index)."""
    if text.isascii():
        return text.lower(), None
    parts: list[str] = []
    offsets: list[int] = []
    done = 0
    for match in _NON_ASCII.finditer(text):
        index = match.start()
        parts.append(text[done:index].lower())
        offsets.extend(range(done, index))
        folded = _TABLE[ord(text[index])]
        parts.append(folded)
        offsets.extend([index] * len(folded))
        done = index + 1
    parts.append(text[done:].lower())
    offsets.extend(range(done, len(text)))
    return "".join(parts), offsets


@lru_cache(maxsize=1 << 16)
def rewrite_word(token: str, one: str = "i") -> tuple[str, tuple[int, ...]]:
    """Rewrite one word (second stage); also return, per output character, its index in ``token``.

    ``one`` is what a leetspeak "1" stands for: "i" ("Sm1th") or "l" ("He1en"); the matcher
    tries both readings of a post that has such a "1".
    """
    if token.isalpha() or token.isdigit():  # most words: nothing to rewrite
        title = _TITLES.get(token)
        return (title, (0, len(token) - 1)) if title else (token, tuple(range(len(token))))
    chars = list(token)
    index = list(range(len(token)))
    if len(chars) > 2 and token.endswith("'s"):
        del chars[-2:], index[-2:]
    plural_possessive = len(chars) > 2 and chars[-1] == "'" and chars[-2] == "s"
    last = len(chars) - 1
    keep = [k for k, char in enumerate(chars) if char != "'" or (plural_possessive and k == last)]
    chars = [chars[k] for k in keep]
    index = [index[k] for k in keep]
    if not token.startswith("@"):
        _map_leetspeak(chars, one)
    keep = [k for k, char in enumerate(chars) if char not in _LEET_SYMBOLS]
    word = "".join(chars[k] for k in keep)
    positions = tuple(index[k] for k in keep)
    title = _TITLES.get(word)
    if title is not None:
        return title, (positions[0], positions[-1])
    return word, positions


def _map_leetspeak(chars: list[str], one: str) -> None:
    """Map digits and symbols standing for letters, in place, where the word makes it unambiguous.

    Only inside words with at least two letters and no run of three digits, so that "4th",
    "b12", "LS11" and "GMC7000001" stay as they are (or harmlessly change) while "5m1th" becomes
    "smith". Handles (``@name1``) are never mapped: digits are part of them.
    """
    letters = sum(char.isalpha() for char in chars)
    if letters < 2 or _DIGIT_RUN.search("".join(chars)):
        return
    original = list(chars)
    last = len(chars) - 1
    for k, char in enumerate(original):
        before = k > 0 and original[k - 1].isalpha()
        after = k < last and original[k + 1].isalpha()
        if char in _LEET_DIGITS and (before or after):
            chars[k] = one if char == "1" else _LEET_DIGITS[char]
        elif char in _LEET_SYMBOLS and after and (before or (k == 0 and char == "$")):
            chars[k] = _LEET_SYMBOLS[char]


class _WordTable(dict[str, str]):
    """Rewritten words by token, filled on first sight and emptied when it grows too big."""

    LIMIT = 200_000

    def __init__(self, one: str) -> None:
        super().__init__()
        self.one = one

    def __missing__(self, token: str) -> str:
        value = self[token] = rewrite_word(token, self.one)[0]
        return value


class _ChunkTable(dict[str, str]):
    """Normalised text by whitespace-separated chunk ("Dr.Smith's," → "dr smith").

    Tokens never span whitespace, so folding chunk by chunk gives the same text as folding the
    whole post, and splitting on whitespace is several times faster than a token regex.
    """

    LIMIT = 200_000

    def __init__(self, words: _WordTable) -> None:
        super().__init__()
        self.words = words

    def __missing__(self, chunk: str) -> str:
        if len(self.words) > self.words.LIMIT:
            self.words.clear()
        value = self[chunk] = " ".join(filter(None, map(self.words.__getitem__, TOKEN.findall(chunk))))
        return value


_WORDS = {"i": _WordTable("i"), "l": _WordTable("l")}
_CHUNKS = {one: _ChunkTable(words) for one, words in _WORDS.items()}


def fold(text: str, one: str = "i", at: str = "a") -> str:
    """The normalised form of ``text`` (no offsets): what every post and every pattern is reduced to.

    ``one`` and ``at`` are what a leetspeak "1" and an "@" inside a name stand for.
    """
    chunks = _CHUNKS[one]
    if len(chunks) > chunks.LIMIT:
        chunks.clear()
    if "@" in text or "\uff20" in text or "\ufe6b" in text:  # inlined: most posts have none
        text = read_at_signs(text, at)
    return " ".join(filter(None, map(chunks.__getitem__, _fold_chars(text).split())))


def has_leet_one(text: str) -> bool:
    """Whether ``text`` has a "1" inside a word, which may stand for "i" or for "l"."""
    return "1" in text and LEET_ONE.search(text) is not None


@dataclass(frozen=True)
class Normalised:
    """A normalised text that can tell where each of its characters came from.

    Built only for the few posts that hit a pattern, and cheaply: the way back from a
    normalised character (its word, then its place in the word) is worked out on demand.
    """

    text: str
    original: str
    one: str
    offsets: list[int] | None  # folded character -> original index (None: the same index)
    words: list[re.Match[str]]  # the folded token behind each word of ``text``

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original span ``[a, b)`` that the normalised span ``[start, end)`` came from."""
        if not 0 <= start < end <= len(self.text) or " " in (self.text[start], self.text[end - 1]):
            raise IndexError(f"span {start}:{end} does not start and end inside words")
        first = self._origin(start)
        stop = self._origin(end - 1) + 1
        # Keep combining marks (and zero-width characters) that belong to the last letter.
        while stop < len(self.original) and _TABLE[ord(self.original[stop])] == "":
            stop += 1
        return first, stop

    def original_text(self, start: int, end: int) -> str:
        first, stop = self.span(start, end)
        return self.original[first:stop]

    def _origin(self, position: int) -> int:
        token = self.words[self.text.count(" ", 0, position)]
        offset = position - (self.text.rfind(" ", 0, position) + 1)
        char = token.start() + rewrite_word(token.group(), self.one)[1][offset]
        return char if self.offsets is None else self.offsets[char]


def normalise(text: str, one: str = "i", at: str = "a") -> Normalised:
    """Normalise ``text`` like :func:`fold`, keeping the way back to the original characters."""
    chars, offsets = _fold_chars_mapped(read_at_signs(text, at))
    table = _WORDS[one]
    tokens = [match for match in TOKEN.finditer(chars) if table[match.group()]]
    normalised = " ".join([table[match.group()] for match in tokens])
    return Normalised(normalised, text, one, offsets, tokens)
