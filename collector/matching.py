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
    specialty_terms,
)
from collector.normalise import Normalised, fold, has_leet_one, normalise
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
_GMC_OR_ODS = re.compile(r"^(\d{7}|[A-Z]\d{5})$")


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


class _Hit(NamedTuple):
    start: int  # span in the normalised text
    stop: int
    key: str
    refs: tuple[_Ref, ...]


class _Context(NamedTuple):
    score: int
    label: str
    shown: str


@dataclass
class _Accepted:
    spans: list[tuple[int, int]] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)


class Matcher:
    """Finds the registered entities a post names; build with :meth:`from_entities`."""

    def __init__(
        self,
        entities: list[Entity],
        automaton: Any,
        exclusions: dict[int, frozenset[str]],
        context_words: tuple[str, ...],
        common: CommonNames,
    ) -> None:
        self.entities = entities
        self._automaton = automaton
        self._exclusions = exclusions
        self._context_words = context_words
        self._common = common
        self._contexts: dict[int, dict[str, tuple[int, str]]] = {}
        self._practices = {e.id: i for i, e in enumerate(entities) if e.kind == "practice"}
        self._replies: dict[str, list[int]] = {}
        for index, entity in enumerate(entities):
            for handle in entity.handles:
                self._replies.setdefault(handle_id(handle), []).append(index)

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
        entities = list(entities)
        common = common_names or CommonNames.bundled()
        refs: dict[str, list[_Ref]] = {}
        keys: set[str] = set()
        excluded: dict[int, set[str]] = {}
        forms_of_practice = _cached_practice_forms(common)
        for index, entity in enumerate(entities):
            for form in _entity_forms(entity, common, forms_of_practice):
                refs.setdefault(form.key, []).append(_Ref(index, form.kind, form.caveat, form.need))
                if form.key in common.namesakes:
                    excluded.setdefault(index, set()).update(common.namesakes[form.key])
            keys.update(_context_keys(entity, forms_of_practice))
        by_key = {entity.key: index for index, entity in enumerate(entities)}
        for key, terms in exclusions.items():
            if key not in by_key:
                log.warning("matching exclusions name %s, which is not in the register", key)
                continue
            excluded.setdefault(by_key[key], set()).update(fold(term) for term in terms)
        words = tuple(sorted({fold(word) for word in context_words} - {""}))
        keys.update(words)
        for excluded_terms in excluded.values():
            keys.update(excluded_terms)
        automaton = ahocorasick.Automaton()
        for key in keys | refs.keys():
            automaton.add_word(" " + key, (key, _shared(refs.get(key, []), entities)))
        automaton.make_automaton()
        frozen = {index: frozenset(terms - {""}) for index, terms in excluded.items()}
        return cls(entities, automaton, frozen, words, common)

    def match(self, post: Post) -> list[EntityMatch]:
        """The registered entities ``post`` names, each with its original text and reason."""
        accepted = self._match_reading(post, "i")
        if has_leet_one(post.text):  # "He1en" reads "Helen", not "Heien"
            for index, found in self._match_reading(post, "l").items():
                accepted.setdefault(index, found)
        return [self._result(index, found) for index, found in _in_text_order(accepted)]

    def _match_reading(self, post: Post, one: str) -> dict[int, _Accepted]:
        padded = " " + fold(post.text, one) + " "
        hits = self._scan(padded)
        replied = self._reply_owners(post)
        if not replied and not any(hit.refs for hit in hits):
            return {}
        norm = normalise(post.text, one)
        found: dict[str, list[tuple[int, int]]] = {}
        for hit in hits:
            found.setdefault(hit.key, []).append((hit.start, hit.stop))
        accepted: dict[int, _Accepted] = {}
        for hit in _outermost(hits):
            self._accept_hit(hit, norm, found, post, accepted)
        for index in replied:
            shown = "@" + (post.in_reply_to or "").lstrip("@")
            _add(accepted, index, (len(norm.text), len(norm.text)), shown, f"reply to {shown}")
        return accepted

    def _scan(self, padded: str) -> list[_Hit]:
        """Every key found at word boundaries; a possessive ("Smith's", "Smiths'") still ends a word."""
        hits = []
        for end, (key, refs) in self._automaton.iter(padded):
            after = padded[end + 1]
            if after == " " or after == "'" or (after == "s" and padded[end + 2] == "'"):
                hits.append(_Hit(end - len(key), end, key, refs))
        return hits

    def _reply_owners(self, post: Post) -> list[int]:
        """Entities whose own account the post replies to (not their own threads)."""
        if not post.in_reply_to:
            return []
        target = handle_id(post.in_reply_to)
        if post.author and handle_id(post.author) == target:
            return []
        return self._replies.get(target, [])

    def _accept_hit(
        self,
        hit: _Hit,
        norm: Normalised,
        found: Mapping[str, list[tuple[int, int]]],
        post: Post,
        accepted: dict[int, _Accepted],
    ) -> None:
        span = (hit.start, hit.stop)
        shown = norm.original_text(*span)
        candidates = []
        for ref in hit.refs:
            if ref.kind in DIRECT_KINDS:
                _add(accepted, ref.entity, span, shown, f"{ref.kind} {shown}")
            elif not self._exclusions.get(ref.entity, frozenset()).intersection(found):
                candidates.append(ref)
        if not candidates:
            return
        if len(candidates) == 1 and candidates[0].need == 0:
            ref = candidates[0]
            _add(accepted, ref.entity, span, shown, f"{ref.kind} '{shown}'")
            return
        supported = []
        for ref in candidates:
            context = self._best_context(ref.entity, found, span, norm, post)
            if context is not None and context.score >= ref.need:
                supported.append((context, ref))
        if not supported:
            return
        top = max(context.score for context, _ in supported)
        best = [(context, ref) for context, ref in supported if context.score == top]
        if len(best) == 1:  # several equally supported candidates: ambiguous, attribute to none
            context, ref = best[0]
            reason = f"{ref.kind} '{shown}' ({ref.caveat}) + {context.label} {context.shown}"
            _add(accepted, ref.entity, span, shown, reason)

    def _best_context(
        self,
        index: int,
        found: Mapping[str, list[tuple[int, int]]],
        span: tuple[int, int],
        norm: Normalised,
        post: Post,
    ) -> _Context | None:
        """The strongest context for entity ``index`` in the post, outside the name itself."""
        context = self.context_of(index)
        best: _Context | None = None
        for key, spans in found.items():
            entry = context.get(key)
            if entry is None or (best is not None and entry[0] <= best.score):
                continue
            outside = [s for s in spans if s[1] <= span[0] or s[0] >= span[1]]
            if outside:
                best = _Context(entry[0], entry[1], f"'{norm.original_text(*outside[0])}'")
        if post.in_reply_to and (best is None or best.score < DIRECT):
            target = handle_id(post.in_reply_to)
            if target in self._reply_ids(index):
                best = _Context(DIRECT, "reply to", "@" + post.in_reply_to.lstrip("@"))
        return best

    def context_of(self, index: int) -> dict[str, tuple[int, str]]:
        """Folded context key → (score, label) for entity ``index``; built on first use."""
        cached = self._contexts.get(index)
        if cached is not None:
            return cached
        entity = self.entities[index]
        context: dict[str, tuple[int, str]] = {}

        def put(key: str, score: int, label: str) -> None:
            if key and score > context.get(key, (0, ""))[0]:
                context[key] = (score, label)

        for word in self._context_words:
            put(word, WEAK, "medical context")
        for term, score in specialty_terms(entity.specialty):
            put(term, score, "specialty")
        put(fold(entity.town), PLACE, "town")
        number = "GMC number" if entity.kind == "doctor" else "ODS code"
        put(fold(entity.key), DIRECT, number)
        for handle in entity.handles:
            for key in handle_keys(handle):
                put(key, DIRECT, "handle")
        for name in entity.practice_names:
            for form in practice_forms(name, entity.town, self._common):
                put(form.key, DIRECT if form.need == 0 else PLACE, "practice")
        for handle in entity.practice_handles:
            for key in handle_keys(handle):
                put(key, DIRECT, "practice handle")
        practice = self._practices.get(entity.practice_id) if entity.practice_id is not None else None
        if practice is not None:
            put(fold(self.entities[practice].key), DIRECT, "practice ODS code")
            put(fold(self.entities[practice].town), PLACE, "town")
        self._contexts[index] = context
        return context

    def _reply_ids(self, index: int) -> set[str]:
        entity = self.entities[index]
        return {handle_id(handle) for handle in (*entity.handles, *entity.practice_handles)}

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


def _entity_forms(entity: Entity, common: CommonNames, forms_of_practice: PracticeForms) -> list[Form]:
    if entity.kind == "doctor":
        forms = doctor_forms(entity.names, common)
    else:
        forms = [form for name in entity.names for form in forms_of_practice(name, entity.town)]
    forms += [Form(key, handle, "handle", "", 0) for handle in entity.handles for key in handle_keys(handle)]
    number = "GMC number" if entity.kind == "doctor" else "ODS code"
    forms.append(Form(fold(entity.key), entity.key, number, "", 0))
    return forms


def _context_keys(entity: Entity, forms_of_practice: PracticeForms) -> set[str]:
    """Keys that may support this entity's ambiguous names, so the automaton finds them too."""
    keys = {fold(entity.town)}
    keys.update(term for term, _ in specialty_terms(entity.specialty))
    for name in entity.practice_names:
        keys.update(form.key for form in forms_of_practice(name, entity.town))
    for handle in entity.practice_handles:
        keys.update(handle_keys(handle))
    keys.discard("")
    return keys


def _cached_practice_forms(common: CommonNames) -> PracticeForms:
    """Practice forms by (name, town): a practice's hundred doctors share its forms."""
    cache: dict[tuple[str, str], list[Form]] = {}

    def forms(name: str, town: str) -> list[Form]:
        key = (name, town)
        if key not in cache:
            cache[key] = practice_forms(name, town, common)
        return cache[key]

    return forms


def _shared(refs: list[_Ref], entities: Sequence[Entity]) -> tuple[_Ref, ...]:
    """Mark a name several entities share: each then needs the place, and the best context wins."""
    named = {ref.entity for ref in refs if ref.kind not in DIRECT_KINDS}
    if len(named) < 2:
        return tuple(refs)
    kinds = {entities[index].kind for index in named}
    who = "doctors" if kinds == {"doctor"} else "practices" if kinds == {"practice"} else "entries"
    caveat = f"shared by {len(named)} registered {who}"
    return tuple(
        ref if ref.kind in DIRECT_KINDS else ref._replace(caveat=caveat, need=max(ref.need, PLACE))
        for ref in refs
    )


def _outermost(hits: list[_Hit]) -> list[_Hit]:
    """Name hits not inside a longer name hit: "Dr Smith" inside "Dr Smith Jones" is not Dr Smith."""
    named = [hit for hit in hits if hit.refs]
    return [
        hit
        for hit in named
        if not any(
            other is not hit
            and other.start <= hit.start
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
