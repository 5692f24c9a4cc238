"""How registered doctors and practices are named in posts, and which of those names are ambiguous.

Shared by the matcher (which looks for every form) and the X query planner (which searches for
them), so that both agree on what needs context: a form's ``need`` is the context score a post
must reach before the form alone is attributed to the entity.

* ``0``: identifies the entity on its own (a rare full name, a distinctive practice name).
* ``WEAK`` (1): a rare surname with a title ("Dr Norcross"): medical context, the specialty or
  anything stronger will do.
* ``PLACE`` (2): a common name, a famous namesake, a generic practice name, or a name several
  registered entities share: the post must also give the place (town, practice), the
  specialty (other than general practice), or a direct identifier (handle, GMC number, reply).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import NamedTuple

from collector.normalise import fold
from vigil.errors import VigilError
from vigil.paths import resource_dir

WEAK = 1
PLACE = 2
DIRECT = 3

TITLES = frozenset({"dr", "doctor", "prof", "professor", "mr", "mrs", "ms", "miss", "mx", "sir", "dame"})
SURNAME_PARTICLES = frozenset(
    {"van", "von", "der", "den", "de", "da", "del", "della", "di", "du", "le", "la", "al", "el", "bin", "ap"}
)
# Generic nouns that end practice names, longest first so "medical centre" wins over "centre".
PRACTICE_NOUNS = (
    "primary care centre",
    "health partnership",
    "healthcare centre",
    "medical practice",
    "doctors surgery",
    "medical centre",
    "medical center",
    "health centre",
    "health center",
    "family practice",
    "medical group",
    "group practice",
    "gp surgery",
    "gp practice",
    "partnership",
    "healthcare",
    "surgery",
    "practice",
    "clinic",
    "gps",
    "gp",
)
# How people refer to a practice whose name is "<core> <noun>": "the Meanwood surgery".
DERIVED_PRACTICE_NOUNS = (
    "surgery",
    "practice",
    "medical practice",
    "medical centre",
    "health centre",
    "gp surgery",
    "gp practice",
    "gp",
    "gps",
    "doctors",
    "doctors surgery",
)
GENERAL_PRACTICE_TERMS = ("general practice", "general practitioner", "gp", "family doctor")
_SPECIALIST = (
    ("aesthetics", "aesthetist"),
    ("aesthesia", "aesthetist"),
    ("ology", "ologist"),
    ("iatry", "iatrist"),
    ("surgery", "surgeon"),
    ("ics", "ician"),
)
_X_HANDLE = re.compile(r"^@?([A-Za-z0-9_]{1,15})$")
_AND = re.compile(r"\band\b", re.IGNORECASE)
_POSSESSIVE = re.compile(r"['\u2019]s\b")  # "St Mary's" is often written "St Marys"


class CommonNamesError(VigilError):
    """The common-names file cannot be read or has a malformed line."""


@dataclass(frozen=True)
class CommonNames:
    """Names too common or too famous to identify anyone alone (``config/matching/common_names.txt``)."""

    surnames: frozenset[str] = frozenset()
    first_names: frozenset[str] = frozenset()
    namesakes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    generic_practice_names: frozenset[str] = frozenset()
    everyday_words: frozenset[str] = frozenset()

    SECTIONS = ("surnames", "first names", "namesakes", "generic practice names", "everyday words")

    @classmethod
    def bundled(cls) -> CommonNames:
        return _bundled()

    @classmethod
    def load(cls, path: Path | str) -> CommonNames:
        """Read the file; a malformed line stops with its line number."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise CommonNamesError(f"common names file {path}: cannot read it ({exc.strerror})") from exc
        return cls.parse(text, str(path))

    @classmethod
    def parse(cls, text: str, where: str = "common names") -> CommonNames:
        sections: dict[str, set[str]] = {name: set() for name in cls.SECTIONS}
        namesakes: dict[str, tuple[str, ...]] = {}
        section = ""
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            if line.startswith("[") and line.endswith("]"):
                section = line[1:-1].strip().lower()
                if section not in sections:
                    raise CommonNamesError(
                        f"{where}:{number}: unknown section [{section}]; expected one of "
                        + ", ".join(f"[{name}]" for name in cls.SECTIONS)
                    )
                continue
            if not section:
                raise CommonNamesError(f"{where}:{number}: {line!r} comes before any [section]")
            name, _, words = line.partition(":") if section == "namesakes" else (line, "", "")
            key = fold(name)
            if not key:
                raise CommonNamesError(f"{where}:{number}: {line!r} has no letters to match")
            sections[section].add(key)
            if section == "namesakes":
                terms = tuple(sorted({fold(word) for word in words.split(",")} - {""}))
                namesakes[key] = tuple(sorted(set(namesakes.get(key, ())) | set(terms)))
        return cls(
            surnames=frozenset(sections["surnames"]),
            first_names=frozenset(sections["first names"]),
            namesakes=namesakes,
            generic_practice_names=frozenset(sections["generic practice names"]),
            everyday_words=frozenset(sections["everyday words"]),
        )


@cache
def _bundled() -> CommonNames:
    return CommonNames.load(resource_dir("config") / "matching" / "common_names.txt")


class Form(NamedTuple):
    """One way a post may name an entity."""

    key: str  # folded, as the automaton sees it
    text: str  # as a person would write it (used in search queries)
    kind: str  # "name", "practice name", "handle", "GMC number", "ODS code"
    caveat: str  # why it does not identify the entity alone ("" if it does)
    need: int  # context score a post must reach (0, WEAK or PLACE)
    capital: bool = False  # alone only if written with a capital ("the Stray surgery"); else needs the place


def _words(text: str) -> tuple[list[str], list[str]]:
    """A name's words after any title, as written and folded (each word folded once: it is costly)."""
    written = text.split()
    while written and written[0].lower().rstrip(".") in TITLES:
        written = written[1:]
    return written, [fold(word) for word in written]


def _join(words: Iterable[str]) -> str:
    return " ".join(word for word in words if word)


def _surname_start(words: Sequence[str]) -> int:
    """Where the surname starts, keeping particles: "Anna van der Berg" → "van der Berg"."""
    start = len(words) - 1
    while start > 1 and words[start - 1].lower() in SURNAME_PARTICLES:
        start -= 1
    return start


def classify_name(key: str, common: CommonNames) -> tuple[str, int]:
    """Caveat and need of a full name ("daniel smith")."""
    words = key.split()
    if key in common.namesakes:
        return "shares a famous name", PLACE
    if words[0] in common.first_names and words[-1] in common.surnames:
        return "common name", PLACE
    return "", 0


def classify_surname(surname: str, common: CommonNames, what: str = "surname only") -> tuple[str, int]:
    """Caveat and need of "Dr <surname>"."""
    if f"dr {surname}" in common.namesakes:
        return "shares a famous name", PLACE
    if surname.split()[-1] in common.surnames:
        return f"common surname, {what}", PLACE
    return what, WEAK


def doctor_forms(names: Sequence[str], common: CommonNames) -> list[Form]:
    """Every form of a doctor's names: the full name (and aliases) plus "Dr <surname>" forms."""
    forms: list[Form] = []
    written, folded = _words(names[0]) if names else ([], [])
    if written:
        start = _surname_start(written)
        surname, surname_written = _join(folded[start:]), " ".join(written[start:])
        if len(written) > 1:
            _add_name(forms, _join(folded), " ".join(written), common)
            if start > 1:  # middle names: "Mary Anne Smith" is also "Mary Smith"
                _add_name(forms, _join([folded[0], surname]), f"{written[0]} {surname_written}", common)
            _add_initial(forms, folded[0], surname, surname_written, common)
        _add_bare(forms, surname, surname_written, common)
    for alias in names[1:]:
        _add_alias(forms, alias, common)
    return _dedupe(forms)


def _add_name(forms: list[Form], key: str, text: str, common: CommonNames, caveat_of: str = "") -> None:
    if key:
        caveat, need = classify_name(caveat_of or key, common)
        forms.append(Form(key, text, "name", caveat, need))


def _add_initial(
    forms: list[Form], first: str, surname: str, surname_written: str, common: CommonNames
) -> None:
    """Only with the title ("Dr H Smith"): "H Smith" alone could be anyone."""
    if first and surname:
        caveat, need = classify_surname(surname, common, "initial and surname")
        text = f"Dr {first[0].upper()} {surname_written}"
        forms.append(Form(f"dr {first[0]} {surname}", text, "name", caveat, need))


def _add_bare(forms: list[Form], surname: str, surname_written: str, common: CommonNames) -> None:
    if surname:
        caveat, need = classify_surname(surname, common)
        forms.append(Form(f"dr {surname}", f"Dr {surname_written}", "name", caveat, need))


def _add_alias(forms: list[Form], alias: str, common: CommonNames) -> None:
    written, folded = _words(alias)
    titled = len(written) < len(alias.split())
    if not written:
        return
    if len(written) == 2 and len(folded[0]) == 1:  # "Dr H Smith"
        _add_initial(forms, folded[0], folded[1], written[1], common)
    elif len(written) > 1:
        key = _join(folded)
        _add_name(forms, key, " ".join(written), common)
        if titled:  # keep the title too, so that the matched text shows it
            _add_name(forms, fold(alias), alias, common, caveat_of=key)
    elif titled:  # "Dr Pepper"
        _add_bare(forms, folded[0], written[0], common)
    elif folded[0]:  # a one-word nickname
        forms.append(Form(folded[0], alias, "name", "one-word alias", PLACE))


def practice_forms(name: str, town: str, common: CommonNames) -> list[Form]:
    """The registered practice name and the forms people use: "Meanwood surgery", "Meanwood GP".

    Derived forms keep the practice's distinctive core and swap the generic noun; the core alone
    ("Meanwood", a district) is never a form. A core listed as generic ("Riverside") needs the
    place, and so does a registered name that is generic without its town. A core listed as an
    everyday word ("Stray") followed by a one-word noun is ordinary English ("a stray practice
    shot"), so such a form counts alone only when written with a capital ("the Stray surgery"),
    and otherwise needs the place; longer forms ("Stray Medical Practice") count as before. Each
    way of writing the name is a form too: "&" or "and", "St Mary's" or "St Marys".
    """
    return _dedupe(form for spelling in _spellings(name) for form in _practice_forms(spelling, town, common))


def _spellings(name: str) -> list[str]:
    spellings = [name]
    if "&" in name:
        spellings.append(name.replace("&", " and "))
    elif _AND.search(name):
        spellings.append(_AND.sub("&", name))
    spellings += [_POSSESSIVE.sub("s", spelling) for spelling in spellings if _POSSESSIVE.search(spelling)]
    return spellings


def _practice_forms(name: str, town: str, common: CommonNames) -> list[Form]:
    full = fold(name)
    if not full:
        return []
    words = full.split()
    town_words = fold(town).split()
    has_town = bool(town_words) and len(words) > len(town_words) and words[-len(town_words) :] == town_words
    if has_town:
        words = words[: -len(town_words)]
    if words and words[0] == "the" and len(words) > 1:
        words = words[1:]
    base = " ".join(words)
    core = _core(base)
    distinct = core or base
    generic = _is_generic(distinct, common)
    caveat, need = ("generic practice name", PLACE) if generic else ("", 0)
    everyday = bool(core) and not generic and _is_everyday(core, common)
    forms = [Form(full, name, "practice name", "" if has_town else caveat, 0 if has_town else need)]
    if base != full and base not in PRACTICE_NOUNS:  # never the bare word "surgery"
        forms.append(Form(base, base, "practice name", caveat, need))
    for noun in DERIVED_PRACTICE_NOUNS if core else ():
        forms.append(Form(f"{core} {noun}", f"{core} {noun}", "practice name", caveat, need))
    if not everyday:
        return forms
    return [form._replace(capital=_is_word_and_noun(form.key, core)) for form in forms]


def _is_everyday(core: str, common: CommonNames) -> bool:
    return _drop_s(core) in _without_final_s(common.everyday_words)


def _is_word_and_noun(key: str, core: str) -> bool:
    """Whether ``key`` is the core and one noun ("stray surgery", "the stray gp"): a phrase that
    ordinary English makes too, unlike "stray medical practice" or "stray surgery harrogate"."""
    words = key.split()
    if words[0] == "the":
        words = words[1:]
    return len(words) == len(core.split()) + 1


def _core(base: str) -> str:
    return next((base[: -len(noun) - 1] for noun in PRACTICE_NOUNS if base.endswith(" " + noun)), "")


_STREET_WORDS = frozenset({
    "road", "street", "lane", "avenue", "way", "drive", "place", "square", "terrace", "crescent", "close",
    "row", "walk",
})  # fmt: skip
# Street names found in most towns ("London Road", "Victoria Street"), as _drop_s leaves them.
_COMMON_STREETS = frozenset({
    "london", "victoria", "albert", "queen", "king", "mill", "main", "school", "chapel", "york",
    "springfield", "windsor",
})  # fmt: skip
_DOCTOR_WORDS = TITLES | {"drs", "doctors"}


def _is_generic(distinct: str, common: CommonNames) -> bool:
    """Whether a practice's distinctive part is shared by practices elsewhere, so needs the place.

    Besides the generic list: a practice named after a doctor ("Dr Patel's Surgery", "Dr Khan &
    Partners"; every town has one), and one named after a street found in most towns ("Station
    Road Surgery", "London Road Surgery").
    """
    generic = _without_final_s(common.generic_practice_names)
    words = distinct.split()
    if words and words[0] in _DOCTOR_WORDS:
        return True
    if len(words) > 1 and words[-1] in _STREET_WORDS:
        street = _drop_s(" ".join(words[:-1]))
        if street in generic or street in _COMMON_STREETS:
            return True
    return _drop_s(distinct) in generic or distinct in PRACTICE_NOUNS or len(distinct) < 3


@cache
def _without_final_s(names: frozenset[str]) -> frozenset[str]:
    return frozenset(map(_drop_s, names))


def _drop_s(name: str) -> str:
    """ "st marys", "st mary" (folded from "St Mary's"), "st thomas'" and "the oaks" compare alike.

    Folding keeps a plural possessive's apostrophe ("St Thomas'"), which would otherwise hide the
    name from the generic list.
    """
    words = (word.rstrip("'") for word in name.split())
    return " ".join(word[:-1] if len(word) > 3 and word.endswith("s") else word for word in words)


def practice_place(name: str, common: CommonNames) -> str | None:
    """The distinctive core of a practice's name ("Meanwood", "Kirkstall Lane"), if it has one.

    Never a form of the practice on its own (it is usually a district), but near one of its
    doctors' names it places the post there: "Dr Penhaligon at Heavitree". An everyday word
    places no one ("Dr Smith and a stray dog"), nor does a generic core.
    """
    written = name.split()
    if written and fold(written[0]) == "the":
        written = written[1:]
    core = _core(fold(" ".join(written)))
    if not core or _is_generic(core, common) or _is_everyday(core, common):
        return None
    return " ".join(written[: len(core.split())])


def specialty_terms(specialty: str) -> list[tuple[str, int]]:
    """Words naming a specialty, with their context score.

    General practice scores WEAK only: nearly every registered doctor is a GP, so "GP" in a post
    says nothing about which Dr Smith it is.
    """
    key = fold(re.sub(r"\(.*?\)", " ", specialty))
    if not key:
        return []
    if key in GENERAL_PRACTICE_TERMS or key.startswith("general practi"):
        return [(term, WEAK) for term in GENERAL_PRACTICE_TERMS]
    terms = [key]
    *head, last = key.split()
    for suffix, replacement in _SPECIALIST:
        if last.endswith(suffix):
            terms.append(" ".join([*head, last[: -len(suffix)] + replacement]))
            break
    return [(term, PLACE) for term in terms]


def handle_keys(handle: str) -> list[str]:
    """Folded forms of a handle as it appears in posts.

    X (``@name``): only with the "@", so a handle that is also a word ("@kane") never matches
    the word. Bluesky (``name.bsky.social``): with and without "@". Mastodon
    (``@name@instance``): the full address. Reddit (``u/name``).
    """
    key = fold(handle)
    if not key:
        return []
    if handle.startswith("u/"):
        return [key]
    if "@" in handle[1:]:
        return [key if key.startswith("@") else "@" + key]
    if "." in handle:
        bare = key.lstrip("@")
        return [bare, "@" + bare]
    return [key if key.startswith("@") else "@" + key]


def handle_id(handle: str) -> str:
    """A handle reduced for comparing ``post.in_reply_to`` with registered handles."""
    return fold(handle).lstrip("@")


def x_handle(handle: str) -> str | None:
    """The X username in ``handle`` ("@drdansmith"), or None for Bluesky, Mastodon or Reddit handles."""
    match = _X_HANDLE.match(handle.strip())
    if match is None or not handle.strip().startswith("@"):
        return None
    return match.group(1)


def _dedupe(forms: Iterable[Form]) -> list[Form]:
    """One form per key, keeping the least demanding (a name listed twice keeps its best reading)."""
    best: dict[str, Form] = {}
    for form in forms:
        if form.key not in best or form.need < best[form.key].need:
            best[form.key] = form
    return list(best.values())
