"""Matching posts to registered doctors and practices: precise, explainable and fast.

One Aho-Corasick automaton (pyahocorasick) holds every folded form of every name, alias, handle,
GMC number, ODS code and practice name, and also the context words that can support an
ambiguous name (towns, specialties, medical words) and the exclusion terms. A post is folded
(:mod:`collector.normalise`) and scanned once; the rare post that hits a name is normalised
again with offsets, so that the stored ``matched_text`` is the original span.

A hit is accepted when its form identifies the entity alone (a handle, a GMC number, a rare full
name, a distinctive practice name), or when the post also carries enough context for it (see
:mod:`collector.names` for the scores). When several registered entities share the form, the
one whose context is strongest wins; a tie drops the hit, because a wrong attribution sends a
false alarm to the wrong practice. Exclusion terms (settings, and the namesakes file) drop name
hits that are about someone else ("Harry Kane" + "Spurs").
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import ahocorasick
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from collector.names import (
    DIRECT,
    PLACE,
    WEAK,
    CommonNames,
    Form,
    doctor_forms,
    handle_id,
    handle_keys,
    practice_forms,
    practice_place,
    specialty_terms,
)
from collector.normalise import Normalised, fold, has_at_letter, has_leet_one, normalise
from collector.post import Post
from vigil.errors import VigilError
from vigil.models import Doctor, Practice

if TYPE_CHECKING:
    from vigil.settings import Settings

log = logging.getLogger(__name__)

# Words that make a post about medical care; they support only a rare surname ("Dr Norcross").
MEDICAL_CONTEXT = ("GP", "surgery", "doctor", "NHS", "appointment", "receptionist")
MATCHED_TEXT_MAX = 255  # MentionEntity.matched_text
DIRECT_KINDS = frozenset({"handle", "GMC number", "ODS code"})
# Context that names the candidate itself, so settles a name however other candidates are placed.
_OWN_IDENTIFIERS = DIRECT_KINDS | {"reply to"}
# Towns that are also everyday words ("reading my notes"): context only when written capitalised.
_WORD_TOWNS = frozenset({
    "reading", "bath", "march", "street", "deal", "wells", "ware", "hope", "rye", "holt", "sandwich",
})  # fmt: skip
# A town followed by one of these is a football club ("Norwich City", "Leeds United"), not a place.
_CLUB_WORDS = frozenset({
    "city", "united", "town", "rovers", "wanderers", "athletic", "albion", "county", "fc", "afc",
})  # fmt: skip
_GMC_OR_ODS = re.compile(r"^(\d{7}|[A-Z]\d{5})$")
_WORD_BEFORE = re.compile(r"[\w.@]\Z")  # "x@drpriya", "evil.drpriya.bsky.social"
_ADDRESS_GOES_ON = re.compile(r"[.@][^\W_]")  # "@drpriya.bsky.social", "@drpriya@mastodon.social"
_LEADING_THE = re.compile(r"the\W+", re.IGNORECASE)
# Why a practice form made of an everyday word and a noun ("stray surgery") needed the place.
_EVERYDAY_CAVEAT = "everyday words, not written as a name"


class MatchingError(VigilError):
    """The matching settings are wrong (bad exclusion key, unreadable common-names file)."""


@dataclass(frozen=True)
class Entity:
    """One register entry as the matcher sees it."""

    kind: Literal["doctor", "practice"]
    id: int  # Doctor.id or Practice.id
    key: str  # GMC number or ODS code
    names: tuple[str, ...]  # doctor: full name + aliases; practice: registered name
    handles: tuple[str, ...]
    town: str = ""
    specialty: str = ""
    practice_id: int | None = None  # a doctor's practice
    practice_names: tuple[str, ...] = ()
    practice_handles: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """How errors and logs name the entity: "doctor Daniel Smith (GMC 7000001)"."""
        number = "GMC" if self.kind == "doctor" else "ODS"
        return f"{self.kind} {self.names[0] if self.names else '?'} ({number} {self.key})"


@dataclass(frozen=True)
class EntityMatch:
    """One registered doctor or practice a post names, with the text and the reason."""

    doctor_id: int | None
    practice_id: int | None
    matched_text: str  # the original span(s) from the post
    reason: str  # why it was accepted, for the people alerted ("why was this attributed to me?")


class _Ref(NamedTuple):
    entity: int  # index into Matcher.entities
    kind: str
    caveat: str
    need: int


class _Candidates:
    """The entities a form may mean, grouped by the context that can pick one out.

    "Dr Patel" may mean thousands of registered doctors: grouped once, when the matcher is built,
    by town, practice and specialty, each post naming "Dr Patel" costs a few lookups, not a pass
    over thousands of doctors.
    """

    __slots__ = ("by_practice", "by_specialty", "by_town", "caveat", "members", "need")

    def __init__(self, members: Iterable[int], caveat: str, need: int, register: _Register) -> None:
        self.members = frozenset(members)
        self.caveat = caveat
        self.need = need
        self.by_town: dict[str, list[int]] = {}
        self.by_practice: dict[int, list[int]] = {}
        self.by_specialty: dict[str, list[tuple[int, int]]] = {}
        for index in self.members:
            entity = register.entities[index]
            self.by_town.setdefault(register.folded(entity.town), []).append(index)
            if entity.practice_id is not None:
                self.by_practice.setdefault(entity.practice_id, []).append(index)
            for term, score in register.specialty_terms(entity.specialty):
                if score >= need:  # "GP" cannot single out one of several Dr Smiths
                    self.by_specialty.setdefault(term, []).append((index, score))


class _Register:
    """The entities, with the folded towns and specialty terms they share, computed once each."""

    def __init__(self, entities: list[Entity]) -> None:
        self.entities = entities
        self._folded: dict[str, str] = {}
        self._specialties: dict[str, list[tuple[str, int]]] = {}

    def folded(self, text: str) -> str:
        key = self._folded.get(text)
        if key is None:
            key = self._folded[text] = fold(text)
        return key

    def specialty_terms(self, specialty: str) -> list[tuple[str, int]]:
        terms = self._specialties.get(specialty)
        if terms is None:
            terms = self._specialties[specialty] = specialty_terms(specialty)
        return terms


class _Term(NamedTuple):
    """What the automaton holds for one key."""

    key: str
    direct: tuple[_Ref, ...]  # handles, GMC numbers, ODS codes: each enough on its own
    named: _Ref | None  # the one entity this name (or practice name) belongs to
    shared: _Candidates | None  # or the several entities that share it


class _Hit(NamedTuple):
    start: int  # span in the normalised text
    stop: int
    term: _Term


class _Context(NamedTuple):
    score: int
    label: str
    span: tuple[int, int] | None  # where in the normalised text; None for a reply


@dataclass
class _Accepted:
    spans: list[tuple[int, int]] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)


class _Reading:
    """One post under one reading of its leetspeak: hits, and the original text on demand."""

    def __init__(self, post: Post, one: str, at: str, text: str, hits: list[_Hit]) -> None:
        self.post = post
        self.one = one
        self.at = at
        self.text = text  # normalised
        self.found: dict[str, list[tuple[int, int]]] = {}
        self.terms: dict[str, _Term] = {}
        for hit in hits:
            self.found.setdefault(hit.term.key, []).append((hit.start, hit.stop))
            self.terms[hit.term.key] = hit.term
        self._norm: Normalised | None = None

    def words_before(self, start: int, count: int) -> list[str]:
        """The ``count`` normalised words before position ``start``."""
        return self.text[max(0, start - 12 * count) : start].split()[-count:]

    def original(self, span: tuple[int, int]) -> str:
        return self._normalised().original_text(*span)

    def inside_address(self, span: tuple[int, int]) -> bool:
        """Whether the handle at ``span`` is only part of a longer one or of an email address.

        Folding turns "." and "@" into spaces, so the X handle "@drpriya" would otherwise be
        found in someone else's "@drpriya.bsky.social", "@drpriya@mastodon.social" or
        "drpriya@nhs.net".
        """
        norm = self._normalised()
        first, stop = norm.span(*span)
        text = norm.original
        return bool(_WORD_BEFORE.search(text, 0, first) or _ADDRESS_GOES_ON.match(text, stop))

    def _normalised(self) -> Normalised:
        if self._norm is None:
            self._norm = normalise(self.post.text, self.one, self.at)
        return self._norm

    def is_place(self, town: str, where: tuple[int, int]) -> bool:
        """Whether a town's name at ``where`` names the place: not a club ("Norwich City"), and a
        town that is also a word only when capitalised ("Reading", not "reading my notes")."""
        following = self.text[where[1] :].split(" ", 2)[1:2]
        if following and following[0] in _CLUB_WORDS:
            return False
        return town not in _WORD_TOWNS or self.capitalised(where)

    def capitalised(self, where: tuple[int, int]) -> bool:
        """Whether the words at ``where`` start with a capital, as a name does ("the Stray surgery")."""
        written = self.original(where)
        the = _LEADING_THE.match(written)
        return written[the.end() if the else 0 :][:1].isupper()

    def around(self, span: tuple[int, int]) -> Iterable[tuple[str, tuple[int, int]]]:
        """Each key found outside ``span``, with where: a name is no context for itself."""
        for key, spans in self.found.items():
            for other in spans:
                if other[1] <= span[0] or other[0] >= span[1]:
                    yield key, other
                    break


class Matcher:
    """Finds the registered entities a post names; build with :meth:`from_entities`."""

    def __init__(
        self,
        register: _Register,
        automaton: Any,
        excluders: dict[str, frozenset[int]],
        context_words: frozenset[str],
        practice_keys: dict[str, list[tuple[int, int, str]]],
        namesakes: dict[str, frozenset[str]] | None = None,
        capital_keys: frozenset[str] = frozenset(),
    ) -> None:
        self.entities = register.entities
        self._register = register
        self._automaton = automaton
        self._excluders = excluders
        self._namesakes = namesakes or {}  # word marking a namesake -> the name forms it rules out
        self._context_words = context_words
        self._practice_keys = practice_keys
        self._capital_keys = capital_keys  # forms that count alone only written with a capital
        self._replies: dict[str, list[int]] = {}  # reply target -> entities owning that handle
        self._practice_replies: dict[str, list[int]] = {}  # reply target -> practice ids
        for index, entity in enumerate(self.entities):
            for handle in entity.handles:
                self._replies.setdefault(handle_id(handle), []).append(index)
        for key, owners in practice_keys.items():
            for practice_id, _, label in owners:
                if label == "practice handle":
                    self._practice_replies.setdefault(key.lstrip("@"), []).append(practice_id)

    @classmethod
    def from_entities(
        cls,
        entities: Iterable[Entity],
        *,
        exclusions: Mapping[str, Sequence[str]] = {},
        common_names: CommonNames | None = None,
        context_words: Sequence[str] = MEDICAL_CONTEXT,
    ) -> Matcher:
        """Build the one automaton over every form of every entity, and the context it may need.

        ``exclusions`` maps a GMC number or ODS code to terms that mark a post as being about
        someone else. ``common_names`` defaults to the bundled list.
        """
        register = _Register(list(entities))
        common = common_names or CommonNames.bundled()
        forms_of_practice = _cached_practice_forms(common)
        refs: dict[str, list[_Ref]] = {}
        excluders: dict[str, set[int]] = {}
        namesakes: dict[str, set[str]] = {}
        keys: set[str] = set()
        capital_keys: set[str] = set()
        for index, entity in enumerate(register.entities):
            for form in _entity_forms(entity, common, forms_of_practice):
                refs.setdefault(form.key, []).append(_Ref(index, form.kind, form.caveat, form.need))
                if form.capital:
                    capital_keys.add(form.key)
                for term in common.namesakes.get(form.key, ()):
                    # only the namesake's own name: "bottle of" rules out "Dr Pepper", not "Amelia Pepper"
                    namesakes.setdefault(term, set()).add(form.key)
            keys.add(register.folded(entity.town))
            keys.update(term for term, _ in register.specialty_terms(entity.specialty))
        by_key = {entity.key: index for index, entity in enumerate(register.entities)}
        for key, terms in exclusions.items():
            if key not in by_key:
                log.warning("matching exclusions name %s, which is not in the register", key)
                continue
            for term in terms:
                excluders.setdefault(fold(term), set()).add(by_key[key])
        practice_keys = _practice_keys(register.entities, forms_of_practice, common)
        words = frozenset(fold(word) for word in context_words) - {""}
        keys.update(words, excluders, namesakes, practice_keys, refs)
        keys.discard("")
        automaton = _automaton(keys, refs, register)
        frozen = {term: frozenset(indexes) for term, indexes in excluders.items()}
        ruled_out = {term: frozenset(forms) for term, forms in namesakes.items()}
        return cls(register, automaton, frozen, words, practice_keys, ruled_out, frozenset(capital_keys))

    @property
    def pattern_count(self) -> int:
        """Keys in the automaton: every form, handle, number, context word and exclusion term."""
        return len(self._automaton)

    def match(self, post: Post) -> list[EntityMatch]:
        """The registered entities ``post`` names, each with its original text and reason."""
        readings = _readings(post.text)
        accepted = self._match_reading(post, *readings[0])
        for one, at in readings[1:]:
            for index, found in self._match_reading(post, one, at).items():
                accepted.setdefault(index, found)
        return [self._result(index, found) for index, found in _in_text_order(accepted)]

    def _match_reading(self, post: Post, one: str, at: str) -> dict[int, _Accepted]:
        text = fold(post.text, one, at)
        hits = self._scan(" " + text + " ")
        target = _reply_target(post)
        replied = self._replies.get(target, []) if target else []
        if not replied and not any(hit.term.direct or hit.term.named or hit.term.shared for hit in hits):
            return {}
        reading = _Reading(post, one, at, text, hits)
        excluded: set[int] = set()
        ruled_out: set[str] = set()  # name forms whose famous namesake the post is about
        for key in reading.found:
            excluded.update(self._excluders.get(key, ()))
            ruled_out.update(self._namesakes.get(key, ()))
        accepted: dict[int, _Accepted] = {}
        for hit in _outermost(hits):
            span = (hit.start, hit.stop)
            for ref in hit.term.direct:
                if ref.kind == "handle" and reading.inside_address(span):
                    continue
                if ref.kind == "GMC number" and "gmc" not in reading.words_before(hit.start, 4):
                    # seven digits alone may be a phone number ("0113 7000001"): need context
                    alone = _Candidates([ref.entity], "without the word GMC", PLACE, self._register)
                    self._accept_supported(alone, hit, reading, excluded, accepted, ref.kind)
                    continue
                shown = reading.original(span)
                _add(accepted, ref.entity, span, shown, f"{ref.kind} {shown}")
            if (hit.term.named or hit.term.shared) and hit.term.key not in ruled_out:
                self._accept_named(hit, reading, excluded, accepted)
        for index in replied:
            shown = "@" + (post.in_reply_to or "").lstrip("@")
            _add(accepted, index, (1 << 30, 1 << 30), shown, f"reply to {shown}")
        return accepted

    def _scan(self, padded: str) -> list[_Hit]:
        """Every key found at word boundaries; a possessive ("Smith's", "Smiths'") still ends a word."""
        hits = []
        for end, (length, term) in self._automaton.iter(padded):
            after = padded[end + 1]
            if after == " " or after == "'" or (after == "s" and padded[end + 2] == "'"):
                hits.append(_Hit(end - length, end, term))
        return hits

    def _accept_named(
        self, hit: _Hit, reading: _Reading, excluded: set[int], accepted: dict[int, _Accepted]
    ) -> None:
        span = (hit.start, hit.stop)
        ref = hit.term.named
        ordinary_words = hit.term.key in self._capital_keys and not reading.capitalised(span)
        if ref is not None and ref.need == 0 and not ordinary_words:
            if ref.entity not in excluded:
                shown = reading.original(span)
                _add(accepted, ref.entity, span, shown, f"{ref.kind} '{shown}'")
            return
        candidates = hit.term.shared
        if ref is not None and ref.need == 0:  # "the stray surgery": ordinary words unless placed
            candidates = _Candidates([ref.entity], _EVERYDAY_CAVEAT, PLACE, self._register)
        elif ref is not None:
            candidates = _Candidates([ref.entity], ref.caveat, ref.need, self._register)
        assert candidates is not None
        self._accept_supported(candidates, hit, reading, excluded, accepted)

    def _accept_supported(
        self,
        candidates: _Candidates,
        hit: _Hit,
        reading: _Reading,
        excluded: set[int],
        accepted: dict[int, _Accepted],
        kind: str = "",
    ) -> None:
        """Attribute the hit to the one candidate with the strongest sufficient context, if any."""
        span = (hit.start, hit.stop)
        supported = [
            (context, index)
            for index, context in self._contexts(candidates, span, reading).items()
            if context.score >= candidates.need and index not in excluded
        ]
        if not supported:
            return
        top = max(context.score for context, _ in supported)
        best = [(context, index) for context, index in supported if context.score == top]
        if len(best) > 1:  # equally supported candidates: ambiguous, so attribute to none
            return
        context, index = best[0]
        if len(supported) > 1 and context.label not in _OWN_IDENTIFIERS:
            # the post places another candidate too ("Dr Morrison at Heavitree Surgery was great,
            # unlike Dr Smith in Leeds"): the strongest context wins only if it is also the nearest
            nearest = min(_gap(other.span, span) for other, other_index in supported if other_index != index)
            if _gap(context.span, span) >= nearest:
                return
        shown = reading.original(span)
        kind = kind or ("name" if self.entities[index].kind == "doctor" else "practice name")
        why = f"reply to @{(reading.post.in_reply_to or '').lstrip('@')}"
        if context.span is not None:
            why = f"{context.label} '{reading.original(context.span)}'"
        _add(accepted, index, span, shown, f"{kind} '{shown}' ({candidates.caveat}) + {why}")

    def _contexts(
        self, candidates: _Candidates, span: tuple[int, int], reading: _Reading
    ) -> dict[int, _Context]:
        """The strongest context the post gives each candidate (only those it gives any)."""
        best: dict[int, _Context] = {}

        def support(index: int, score: int, label: str, where: tuple[int, int] | None) -> None:
            current = best.get(index)
            if current is None or score > current.score:
                best[index] = _Context(score, label, where)

        single = len(candidates.members) == 1
        for key, where in reading.around(span):
            towns = candidates.by_town.get(key, ())
            for index in towns if towns and reading.is_place(key, where) else ():
                support(index, PLACE, "town", where)
            practices = self._practice_keys.get(key, ())
            if key in self._capital_keys and not reading.capitalised(where):
                practices = ()  # "Dr Smith and the stray surgery cat" places no one
            for practice_id, score, label in practices:
                for index in candidates.by_practice.get(practice_id, ()):
                    support(index, score, label, where)
            for index, score in candidates.by_specialty.get(key, ()):
                support(index, score, "specialty", where)
            for ref in reading.terms[key].direct:
                if ref.entity in candidates.members:
                    support(ref.entity, DIRECT, ref.kind, where)
            if single and key in self._context_words:
                support(next(iter(candidates.members)), WEAK, "medical context", where)
        target = _reply_target(reading.post)
        if target:
            for index in self._replies.get(target, ()):
                if index in candidates.members:
                    support(index, DIRECT, "reply to", None)
            for practice_id in self._practice_replies.get(target, ()):
                for index in candidates.by_practice.get(practice_id, ()):
                    support(index, DIRECT, "reply to", None)
        return best

    def _result(self, index: int, found: _Accepted) -> EntityMatch:
        entity = self.entities[index]
        matched = "; ".join(_unique(found.texts))
        if len(matched) > MATCHED_TEXT_MAX:
            matched = matched[: MATCHED_TEXT_MAX - 1] + "…"
        reason = "; ".join(_unique(found.reasons))
        if entity.kind == "doctor":
            return EntityMatch(entity.id, None, matched, reason)
        return EntityMatch(None, entity.id, matched, reason)


PracticeForms = Callable[[str, str], list[Form]]


def _automaton(keys: set[str], refs: Mapping[str, list[_Ref]], register: _Register) -> Any:
    """The one automaton; a hyphenated key ("smith-jones") is also found without its hyphen."""
    automaton = ahocorasick.Automaton()
    terms = {key: _term(key, refs.get(key, []), register) for key in keys}
    for key, term in terms.items():
        automaton.add_word(" " + key, (len(key), term))
    for key, term in terms.items():
        spaced = key.replace("-", " ")
        if spaced != key and spaced not in terms:
            automaton.add_word(" " + spaced, (len(key), term))
    automaton.make_automaton()
    return automaton


def _term(key: str, refs: list[_Ref], register: _Register) -> _Term:
    """The automaton's value for ``key``; a name several entities share needs the place."""
    direct = tuple(ref for ref in refs if ref.kind in DIRECT_KINDS)
    named = [ref for ref in refs if ref.kind not in DIRECT_KINDS]
    owners = {ref.entity for ref in named}
    if len(owners) < 2:
        return _Term(key, direct, named[0] if named else None, None)
    kinds = {register.entities[index].kind for index in owners}
    who = "doctors" if kinds == {"doctor"} else "practices" if kinds == {"practice"} else "entries"
    shared = _Candidates(owners, f"shared by {len(owners)} registered {who}", PLACE, register)
    return _Term(key, direct, None, shared)


def _entity_forms(entity: Entity, common: CommonNames, forms_of_practice: PracticeForms) -> list[Form]:
    if entity.kind == "doctor":
        forms = doctor_forms(entity.names, common)
    else:
        forms = [form for name in entity.names for form in forms_of_practice(name, entity.town)]
    forms += [Form(key, handle, "handle", "", 0) for handle in entity.handles for key in handle_keys(handle)]
    number = "GMC number" if entity.kind == "doctor" else "ODS code"
    forms.append(Form(fold(entity.key), entity.key, number, "", 0))
    return forms


def _practice_keys(
    entities: Sequence[Entity], forms_of_practice: PracticeForms, common: CommonNames
) -> dict[str, list[tuple[int, int, str]]]:
    """Keys that place a post at a practice → (practice id, score, label), for its doctors' names."""
    practices: dict[int, tuple[tuple[str, ...], str, tuple[str, ...], str]] = {}
    for entity in entities:
        if entity.kind == "practice":
            practices[entity.id] = (entity.names, entity.town, entity.handles, entity.key)
        elif entity.practice_id is not None and entity.practice_id not in practices:
            practices[entity.practice_id] = (entity.practice_names, entity.town, entity.practice_handles, "")
    keys: dict[str, list[tuple[int, int, str]]] = {}
    for practice_id, (names, town, handles, ods) in practices.items():
        found: dict[str, tuple[int, str]] = {}
        for name in names:
            for form in forms_of_practice(name, town):
                found[form.key] = (DIRECT if form.need == 0 else PLACE, "practice")
            place = practice_place(name, common)
            if place and fold(place) not in found:
                found[fold(place)] = (PLACE, "practice")
        for handle in handles:
            for key in handle_keys(handle):
                found[key] = (DIRECT, "practice handle")
        if ods:
            found[fold(ods)] = (DIRECT, "practice ODS code")
        for key, (score, label) in found.items():
            keys.setdefault(key, []).append((practice_id, score, label))
    return keys


def _cached_practice_forms(common: CommonNames) -> PracticeForms:
    """Practice forms by (name, town): a practice's doctors all share its forms."""
    cache: dict[tuple[str, str], list[Form]] = {}

    def forms(name: str, town: str) -> list[Form]:
        key = (name, town)
        if key not in cache:
            cache[key] = practice_forms(name, town, common)
        return cache[key]

    return forms


def _reply_target(post: Post) -> str:
    """The handle the post replies to, unless the author replies to their own post (a thread)."""
    if not post.in_reply_to:
        return ""
    target = handle_id(post.in_reply_to)
    return "" if post.author and handle_id(post.author) == target else target


def _outermost(hits: list[_Hit]) -> list[_Hit]:
    """Hits not inside a longer name hit: "Dr Smith" inside "Dr Smith Jones" is not Dr Smith."""
    named = [hit for hit in hits if hit.term.direct or hit.term.named or hit.term.shared]
    return [
        hit
        for hit in named
        if not any(
            other.start <= hit.start
            and hit.stop <= other.stop
            and (other.stop - other.start) > (hit.stop - hit.start)
            for other in named
        )
    ]


def _add(accepted: dict[int, _Accepted], index: int, span: tuple[int, int], text: str, reason: str) -> None:
    found = accepted.setdefault(index, _Accepted())
    found.spans.append(span)
    found.texts.append(text)
    found.reasons.append(reason)


def _gap(context: tuple[int, int] | None, span: tuple[int, int]) -> int:
    """Characters between a context and the name it supports (a reply, with no span, is nearest)."""
    if context is None:
        return 0
    return max(context[0] - span[1], span[0] - context[1], 0)


def _readings(text: str) -> list[tuple[str, str]]:
    """What a leetspeak "1" and an "@" inside a name may stand for in ``text``: every reading is
    matched, and the first to accept an entity gives its match.

    "He1en" reads "Helen", not "Heien"; "Dr P@tel" reads "Patel", but "Dr N@rcross" reads
    "Norcross", and "Dr Smith@meanwoodgp" is a name glued to a handle, read as before "@" stood
    for a letter. Most posts have neither, and are read once.
    """
    ones = ("i", "l") if has_leet_one(text) else ("i",)
    if not has_at_letter(text):
        return _PLAIN_READINGS[ones]
    return [(one, at) for at in ("a", "o", "@") for one in ones]


_PLAIN_READINGS = {ones: [(one, "a") for one in ones] for ones in (("i",), ("i", "l"))}


def _in_text_order(accepted: dict[int, _Accepted]) -> list[tuple[int, _Accepted]]:
    return sorted(accepted.items(), key=lambda item: (min(item[1].spans), item[0]))


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


# --- the register, the cache and the settings ----------------------------------------------


def load_entities(session: Session) -> list[Entity]:
    """Every registered practice and doctor as the matcher sees them, in id order."""
    practices = session.execute(
        select(Practice.id, Practice.ods_code, Practice.name, Practice.handles, Practice.town).order_by(
            Practice.id
        )
    ).all()
    by_id = {row.id: row for row in practices}
    entities = [
        Entity("practice", row.id, row.ods_code, (row.name,), tuple(row.handles or ()), town=row.town)
        for row in practices
    ]
    doctors = session.execute(
        select(
            Doctor.id,
            Doctor.gmc_number,
            Doctor.full_name,
            Doctor.aliases,
            Doctor.handles,
            Doctor.town,
            Doctor.specialty,
            Doctor.practice_id,
        ).order_by(Doctor.id)
    ).all()
    for row in doctors:
        practice = by_id.get(row.practice_id) if row.practice_id is not None else None
        entities.append(
            Entity(
                "doctor",
                row.id,
                row.gmc_number,
                (row.full_name, *(row.aliases or ())),
                tuple(row.handles or ()),
                town=row.town or (practice.town if practice else ""),
                specialty=row.specialty or "",
                practice_id=row.practice_id,
                practice_names=(practice.name,) if practice else (),
                practice_handles=tuple(practice.handles or ()) if practice else (),
            )
        )
    return entities


def register_version(session: Session) -> str:
    """A string that changes whenever a practice or doctor is added, changed or removed.

    Counts catch removals, the highest id catches a removal plus an addition, and the latest
    ``updated_at`` catches edits (every ORM update sets it): cheap aggregate queries, no scan of
    a 300,000-row register on every poll.
    """
    parts = []
    for model in (Practice, Doctor):
        count, top, updated = session.execute(
            select(func.count(), func.max(model.id), func.max(model.updated_at))
        ).one()
        parts.append(f"{model.__tablename__}:{count}:{top}:{updated}")
    return "|".join(parts)


def matcher_from_settings(settings: Settings, entities: Iterable[Entity]) -> Matcher:
    """A matcher configured by the ``[matching]`` settings."""
    config = settings.matching
    return Matcher.from_entities(
        entities,
        exclusions=checked_exclusions(config.exclusions),
        common_names=common_names_from(config.common_names_file),
        context_words=config.context_words,
    )


def common_names_from(path: str | Path) -> CommonNames:
    if not str(path):
        return CommonNames.bundled()
    try:
        return CommonNames.load(path)
    except VigilError as exc:
        raise MatchingError(f"setting matching.common_names_file: {exc}") from exc


def checked_exclusions(exclusions: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    """Exclusion terms keyed by GMC number or ODS code; any other key is a settings error."""
    bad = [key for key in exclusions if not _GMC_OR_ODS.match(key)]
    if bad:
        raise MatchingError(
            f"setting matching.exclusions: {bad[0]!r} is neither a GMC number (7 digits) "
            "nor an ODS code (a letter and 5 digits)"
        )
    return {key: tuple(terms) for key, terms in exclusions.items()}


class MatcherCache:
    """Holds one matcher, rebuilt when the register (or the matching settings) change."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._version: tuple[str, str] | None = None
        self._matcher: Matcher | None = None

    def get(self, session: Session, settings: Settings) -> Matcher:
        config = settings.matching
        version = (
            register_version(session),
            repr((str(config.common_names_file), sorted(config.exclusions.items()), config.context_words)),
        )
        with self._lock:
            if self._matcher is None or version != self._version:
                started = time.perf_counter()
                entities = load_entities(session)
                self._matcher = matcher_from_settings(settings, entities)
                self._version = version
                log.info(
                    "matcher built for %d register entries in %.2f s",
                    len(entities),
                    time.perf_counter() - started,
                    extra={"entities": len(entities)},
                )
            return self._matcher
