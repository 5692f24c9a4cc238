"""X recent-search queries planned from the register: precise, few, and stable.

X bills every post a search returns ($0.005 a read), so a query must return posts the matcher
will accept, and a polling cycle should need as few requests as possible. Three steps:

1. Terms. A name that identifies its entity on its own (a rare full name, a distinctive practice
   name) is searched as a quoted phrase; an X handle as ``@name``. A name that needs context in
   the matcher ("Dr Smith", a common or famous name, a generic practice name) is searched only
   together with that context — the town, the practice, a non-GP specialty, and for a rare
   surname also the medical context words — and without the words that mark a famous namesake
   (``-Tottenham``). Names sharing one context share one term:
   ``(("Dr Smith" OR "Dr Norcross") (Leeds OR "Meanwood Health Centre"))``.
2. Packing. Terms are joined with ``OR`` into queries of at most ``max_length`` characters,
   suffix (``-is:retweet``) included.
3. Stability. The collector keeps a ``since_id`` per query string, and a changed query starts
   again from scratch (re-reading, and paying for, a week of posts). Terms are therefore placed by
   a stable hash of what they are about, and packed within fixed hash ranges, so adding one
   doctor changes a few queries of its range and no others; :func:`carry_since_ids` lets a
   changed query made of already-searched terms resume where they were.

X's operator rules (reference): a space is AND and binds tighter than OR; ``"..."`` is an exact
phrase; a group may not be negated, so each excluded word is negated on its own.
"""

from __future__ import annotations

import hashlib
import math
from bisect import bisect_left, insort
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from collector.matching import MEDICAL_CONTEXT, Entity, checked_exclusions, common_names_from
from collector.names import (
    WEAK,
    CommonNames,
    Form,
    doctor_forms,
    practice_forms,
    practice_place,
    specialty_terms,
    x_handle,
)
from collector.normalise import fold
from vigil.errors import VigilError

if TYPE_CHECKING:
    from vigil.settings import Settings

SELF_SERVE_MAX_LENGTH = 512
ENTERPRISE_MAX_LENGTH = 4096
RETWEETS = "-is:retweet"
DEFAULT_CONTEXT = MEDICAL_CONTEXT
OR = " OR "
# Excluded words cost characters in every request; they only save reads, so keep them short.
_NEGATIONS_SHARE = 0.25
# Terms are packed within hash ranges of at most this many queries' worth: bigger ranges pack
# tighter, smaller ones change fewer queries when the register changes.
SEGMENT_QUERIES = 16


class QueryPlanError(VigilError):
    """The register cannot be searched within the query length (a term alone is too long)."""


@dataclass(frozen=True)
class Term:
    """One OR-able piece of a query, with the key that fixes its place in the plan."""

    text: str
    place: str  # what the term is about; its hash decides which query holds it
    entity: str  # who it is for, to name in errors

    @property
    def order(self) -> int:
        return int.from_bytes(hashlib.sha256(self.place.encode("utf-8")).digest()[:8], "big")


def plan_queries(
    entities: Sequence[Entity],
    *,
    max_length: int = SELF_SERVE_MAX_LENGTH,
    exclude_retweets: bool = True,
    context_words: Sequence[str] = DEFAULT_CONTEXT,
    common_names: CommonNames | None = None,
    exclusions: Mapping[str, Sequence[str]] | None = None,
) -> list[str]:
    """X API v2 search queries covering every registered name and X handle, each ≤ ``max_length``.

    ``exclusions`` (GMC number or ODS code → words) are negated in that entity's terms, as the
    matcher drops posts containing them.
    """
    suffix = f" {RETWEETS}" if exclude_retweets else ""
    terms = query_terms(
        entities,
        max_length=max_length,
        suffix=suffix,
        context_words=context_words,
        common_names=common_names,
        exclusions=exclusions or {},
    )
    return pack(terms, max_length=max_length, suffix=suffix)


def plan_queries_from_settings(
    settings: Settings, entities: Sequence[Entity], *, max_length: int, exclude_retweets: bool = True
) -> list[str]:
    """:func:`plan_queries` with the ``[matching]`` settings the matcher uses, so both agree."""
    config = settings.matching
    return plan_queries(
        entities,
        max_length=max_length,
        exclude_retweets=exclude_retweets,
        context_words=config.context_words,
        common_names=common_names_from(config.common_names_file),
        exclusions=checked_exclusions(config.exclusions),
    )


def query_cost_lower_bound(terms: Iterable[str], *, max_length: int, suffix: str = f" {RETWEETS}") -> int:
    """The fewest queries that could hold ``terms``: their characters over a query's capacity.

    Each term costs its length plus the `` OR `` joining it to the next; a query holds
    ``max_length`` minus its fixed parts (parentheses and suffix) plus the one `` OR `` it does
    not need. No packing can do better.
    """
    total = sum(len(term) + len(OR) for term in terms)
    return math.ceil(total / (_capacity(max_length, suffix) + len(OR))) if total else 0


def query_terms(
    entities: Sequence[Entity],
    *,
    max_length: int = SELF_SERVE_MAX_LENGTH,
    suffix: str = f" {RETWEETS}",
    context_words: Sequence[str] = DEFAULT_CONTEXT,
    common_names: CommonNames | None = None,
    exclusions: Mapping[str, Sequence[str]] | None = None,
) -> list[Term]:
    """Every term the register needs, deduplicated, each fitting in one query."""
    common = common_names or CommonNames.bundled()
    capacity = _capacity(max_length, suffix)
    medical = tuple(context_words)
    searched = [(entity, _searched_forms(entity, common)) for entity in entities]
    owners: dict[str, set[str]] = {}
    for entity, forms in searched:
        for form in forms:
            owners.setdefault(form.key, set()).add(entity.label)
    alone: dict[str, Term] = {}
    groups: dict[tuple[tuple[str, ...], tuple[str, ...]], dict[str, str]] = {}
    for entity, forms in searched:
        for handle in entity.handles:
            name = x_handle(handle)
            if name is not None:
                _keep(alone, Term(f"@{name}", f"@{name.lower()}", entity.label), capacity)
        for form in forms:
            negations = _negations(entity, form, common, exclusions or {}, capacity)
            phrase = _quote(form.text)
            if form.need == 0 and len(owners[form.key]) == 1:  # the name alone identifies them
                text = f"({phrase} {' '.join(negations)})" if negations else phrase
                _keep(alone, Term(text, form.key, entity.label), capacity)
                continue
            context = _context(entity, form, medical, common)
            if context:  # a name with no context to search for could never be attributed
                groups.setdefault((context, negations), {}).setdefault(phrase, entity.label)
    grouped = [term for key, names in groups.items() for term in _group_terms(key, names, capacity)]
    return sorted([*alone.values(), *grouped], key=lambda term: (term.order, term.text))


def pack(terms: Sequence[Term], *, max_length: int, suffix: str) -> list[str]:
    """Join terms with OR into queries of at most ``max_length`` characters, few and stable.

    The hash space is halved until each part holds at most ``SEGMENT_QUERIES`` queries' worth
    of terms; within a part, terms are placed in hash order into the fullest query they fit
    (best fit). A changed or new term can only move terms within its own part, and best fit
    leaves a part's queries nearly full.
    """
    capacity = _capacity(max_length, suffix)
    ordered = sorted(terms, key=lambda term: (term.order, term.text))
    parts = _segments(ordered, capacity)
    return [_query(texts, suffix) for part in parts for texts in _best_fit(part, capacity)]


def _segments(terms: list[Term], capacity: int) -> list[list[Term]]:
    """Contiguous hash ranges, split in halves at fixed points until each is small enough."""
    limit = SEGMENT_QUERIES * (capacity + len(OR))
    parts: list[list[Term]] = []
    pending = [(terms, 0)]
    while pending:
        items, depth = pending.pop()
        if depth == 64 or sum(len(term.text) + len(OR) for term in items) <= limit:
            parts.append(items)
            continue
        bit = 1 << (63 - depth)
        pending.append(([term for term in items if term.order & bit], depth + 1))
        pending.append(([term for term in items if not term.order & bit], depth + 1))
    return [part for part in parts if part]


def _best_fit(terms: list[Term], capacity: int) -> list[list[str]]:
    queries: list[list[str]] = []
    room: list[int] = []
    by_room: list[tuple[int, int]] = []  # (room left, query number), sorted
    for term in terms:
        need = len(term.text) + len(OR)
        found = bisect_left(by_room, (need, -1))
        if found == len(by_room):
            number = len(queries)
            queries.append([])
            room.append(capacity + len(OR))
        else:
            number = by_room.pop(found)[1]
        queries[number].append(term.text)
        room[number] -= need
        insort(by_room, (room[number], number))
    return queries


def terms_of(query: str) -> list[str]:
    """The OR-joined terms of a planned query (the inverse of packing), for carrying ``since_id``."""
    body = query.removesuffix(f" {RETWEETS}")
    if body != query:  # "(... OR ...) -is:retweet"
        body = body[1:-1]
    terms, depth, quoted, start = [], 0, False, 0
    for index, char in enumerate(body):
        if char == '"':
            quoted = not quoted
        elif not quoted and char in "()":
            depth += 1 if char == "(" else -1
        elif not quoted and depth == 0 and body.startswith(OR, index):
            terms.append(body[start:index])
            start = index + len(OR)
    terms.append(body[start:])
    return [term for term in terms if term]


def carry_since_ids(previous: Mapping[str, str], queries: Sequence[str]) -> dict[str, str]:
    """A starting ``since_id`` for new queries made only of terms that were already searched.

    Post ids grow with time, so a query whose every term was in some previous query can start
    from the oldest of those queries' ``since_id`` and miss nothing, instead of re-reading (and
    paying for) a week of posts. A query with a new term gets none: it starts afresh.
    """
    since_of_term: dict[str, int] = {}
    for query, since_id in previous.items():
        for term in terms_of(query):
            since_of_term[term] = min(int(since_id), since_of_term.get(term, int(since_id)))
    carried: dict[str, str] = {}
    for query in queries:
        if query in previous:
            carried[query] = previous[query]
            continue
        ids = [since_of_term.get(term) for term in terms_of(query)]
        if ids and all(since is not None for since in ids):
            carried[query] = str(min(since for since in ids if since is not None))
    return carried


def _query(texts: Sequence[str], suffix: str) -> str:
    """The query: with a suffix, the OR group in parentheses, since AND binds tighter than OR."""
    body = OR.join(texts)
    return f"({body}){suffix}" if suffix else body


def _capacity(max_length: int, suffix: str) -> int:
    """Characters left for OR-joined terms once a query's fixed parts are counted."""
    return max_length - len(suffix) - (2 if suffix else 0)


def _searched_forms(entity: Entity, common: CommonNames) -> list[Form]:
    """The forms worth a search: full names, aliases and "Dr <surname>"; registered practice names.

    A form that contains another of the entity's forms, no easier to attribute, is left out
    ("Dr Dan Smith" is found by "Dan Smith"); so are initials ("Dr D Smith") and colloquial
    practice forms, which cost more characters than the posts they would add.
    """
    if entity.kind == "practice":
        forms = [form for name in entity.names for form in practice_forms(name, entity.town, common)[:1]]
    else:
        forms = [form for form in doctor_forms(entity.names, common) if not _is_initial(form)]
    return [
        form
        for form in forms
        if not any(
            other.key != form.key and f" {other.key} " in f" {form.key} " and other.need <= form.need
            for other in forms
        )
    ]


def _is_initial(form: Form) -> bool:
    words = form.key.split()
    return len(words) >= 3 and words[0] == "dr" and len(words[1]) == 1


def _context(entity: Entity, form: Form, medical: tuple[str, ...], common: CommonNames) -> tuple[str, ...]:
    """What a post must also say for the matcher to accept ``form``: the place, and more.

    A practice is searched by the distinctive core of its name when it has one ("Meanwood"
    finds "Meanwood Health Centre" too, and "Dr Smith at Meanwood").
    """
    practices = [practice_place(name, common) or name for name in entity.practice_names]
    words = [entity.town, *practices, *(medical if form.need <= WEAK else ())]
    words += [term for term, score in specialty_terms(entity.specialty) if score > WEAK or form.need <= WEAK]
    context: dict[str, str] = {}
    for word in words:
        if fold(word):  # once each: X matches case-insensitively
            context.setdefault(fold(word), _quote(word))
    return tuple(sorted(context.values(), key=str.lower))


def _negations(
    entity: Entity, form: Form, common: CommonNames, exclusions: Mapping[str, Sequence[str]], capacity: int
) -> tuple[str, ...]:
    """Words marking a namesake, negated one by one (X cannot negate a group), within a budget.

    As in the matcher, a namesake's words rule out only that name ("bottle of" for "Dr Pepper"),
    never the doctor's other names ("Amelia Pepper"); the settings' exclusions rule out them all.
    """
    words = set(exclusions.get(entity.key, ()))
    words.update(common.namesakes.get(form.key, ()))
    negated: list[str] = []
    budget = int(capacity * _NEGATIONS_SHARE)
    for word in sorted(words, key=str.lower):
        text = "-" + _quote(word)
        if budget - len(text) - 1 < 0:
            break
        negated.append(text)
        budget -= len(text) + 1
    return tuple(negated)


def _group_terms(
    key: tuple[tuple[str, ...], tuple[str, ...]], names: dict[str, str], capacity: int
) -> list[Term]:
    """Names sharing a context as few terms: ``((a OR b) (ctx1 OR ctx2) -x)``, split to fit.

    Names are split into chunks in hash order, each chunk filling at most a query; a chunk's
    place is its context and its number, so that a new name changes only the chunks from the
    one it joins. A context too long for one query is split too (``A (B OR C)`` is
    ``A B OR A C``), and excluded words, which only save reads, are dropped before that.
    """
    context, negations = key
    longest = max(names, key=len)
    fixed = len("(())") + len(longest) + 1
    while negations and fixed + max(map(len, context)) + len(" ".join(negations)) + 1 > capacity:
        negations = negations[:-1]
    excluded = "".join(" " + word for word in negations)
    budget = capacity - fixed - len(excluded) - len("()")
    if max(map(len, context)) > budget:
        raise QueryPlanError(
            f"{names[longest]}: the X query term for {longest} with its context needs "
            f"{fixed + max(map(len, context)) + 2} characters; the maximum query length allows {capacity}"
        )
    terms = []
    for part in _chunks(context, budget):
        tail = " " + _any(part) + excluded
        for number, chunk in enumerate(_chunks(_by_hash(names), capacity - len(tail) - len("(())"))):
            terms.append(Term(f"({_any(chunk)}{tail})", f"{tail}|{number}", names[chunk[0]]))
    return terms


def _chunks(items: Sequence[str], room: int) -> list[list[str]]:
    """Consecutive items OR-joined into chunks of at most ``room`` characters (each item fits)."""
    chunks: list[list[str]] = []
    used = room + 1
    for item in items:
        if used + len(OR) + len(item) > room:
            chunks.append([])
            used = -len(OR)
        chunks[-1].append(item)
        used += len(OR) + len(item)
    return chunks


def _by_hash(phrases: Iterable[str]) -> list[str]:
    return sorted(phrases, key=lambda phrase: (Term(phrase, phrase, "").order, phrase))


def _any(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else "(" + OR.join(items) + ")"


def _keep(terms: dict[str, Term], term: Term, capacity: int) -> None:
    if len(term.text) > capacity:
        raise QueryPlanError(
            f"{term.entity}: the X query term {term.text} is {len(term.text)} characters; "
            f"the maximum query length allows {capacity}"
        )
    terms.setdefault(term.text.lower(), term)


def _quote(text: str) -> str:
    """An exact phrase for X; a single plain word needs no quotes."""
    cleaned = " ".join(text.replace('"', " ").split())
    if cleaned.isalnum() and cleaned.lower() not in {"or", "and"}:
        return cleaned
    return f'"{cleaned}"'
