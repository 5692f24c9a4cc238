"""X query planning: valid, precise queries within the length limit; few, deterministic and stable."""

from __future__ import annotations

import math
import random
import re
from collections import Counter

import pytest

from benchmarks import synthetic
from collector.matching import Entity
from collector.xquery import (
    QueryPlanError,
    carry_since_ids,
    plan_queries,
    plan_queries_from_settings,
    query_cost_lower_bound,
    query_terms,
    terms_of,
)
from tests.collector.register import ENTITIES, MEANWOOD, doctor
from vigil.settings import Settings


@pytest.fixture(scope="module")
def register() -> list[Entity]:
    """About 1,200 doctors and practices with realistic, often shared, names."""
    return [*ENTITIES, *synthetic.register(1_200)]


def assert_valid_x_query(query: str, max_length: int, suffix: str = " -is:retweet") -> None:
    """X operator rules: balanced quotes and parentheses, no negated group, the suffix ANDed to all."""
    assert len(query) <= max_length, (len(query), query)
    assert query.count('"') % 2 == 0, query
    unquoted = re.sub(r'"[^"]*"', '""', query)
    depth = 0
    for char in unquoted:
        depth += {"(": 1, ")": -1}.get(char, 0)
        assert depth >= 0, query
    assert depth == 0, query
    assert "-(" not in unquoted, "X cannot negate a group"
    assert "()" not in unquoted and '""' not in query, "no empty group or phrase"
    assert not re.search(r"\bor\b|\band\b", unquoted), "operators are upper-case OR, and AND is a space"
    assert " OR OR " not in unquoted and not unquoted.startswith("( OR") and " OR )" not in unquoted
    if suffix:
        assert query.endswith(suffix) and query.startswith("(")
        assert query[: -len(suffix)].endswith(")")


@pytest.mark.parametrize("max_length", [200, 512, 4096])
def test_every_query_is_valid_and_within_the_limit(register: list[Entity], max_length: int) -> None:
    for query in plan_queries(register, max_length=max_length):
        assert_valid_x_query(query, max_length)


@pytest.mark.parametrize("max_length", [200, 512, 4096])
def test_every_term_appears_exactly_once(register: list[Entity], max_length: int) -> None:
    terms = [term.text for term in query_terms(register, max_length=max_length)]
    planned = [term for query in plan_queries(register, max_length=max_length) for term in terms_of(query)]
    assert Counter(planned) == Counter(terms)
    assert len(set(terms)) == len(terms)


def test_queries_are_packed_close_to_the_lower_bound(register: list[Entity]) -> None:
    terms = [term.text for term in query_terms(register)]
    queries = plan_queries(register)
    assert len(queries) <= 1.1 * query_cost_lower_bound(terms, max_length=512)
    assert len(queries) < len(register) / 5


def test_the_plan_is_deterministic_whatever_the_register_order(register: list[Entity]) -> None:
    shuffled = list(register)
    random.Random(3).shuffle(shuffled)
    assert plan_queries(register) == plan_queries(register) == plan_queries(shuffled)


NEWCOMERS = [
    ("Quentin Blackadder", ()),  # a rare name, searched alone
    ("Sarah Smith", ()),  # a common name, searched with its practice's context
    ("Harry Kane", ()),  # a famous namesake
    ("Wen Li", ("@drwenli",)),  # and an X handle
]


@pytest.mark.parametrize(("name", "handles"), NEWCOMERS)
def test_adding_a_doctor_changes_few_queries(
    register: list[Entity], name: str, handles: tuple[str, ...]
) -> None:
    before = plan_queries(register)
    newcomer = doctor(99_999, "7999999", (name,), MEANWOOD, handles)
    after = plan_queries([*register, newcomer])
    changed = set(after) - set(before)
    assert 1 <= len(changed) <= 16  # within one packing range (SEGMENT_QUERIES)
    assert len(set(before) & set(after)) >= len(before) - 16
    assert any(name in query for query in changed)


def test_changed_queries_made_of_old_terms_resume_from_the_oldest_since_id() -> None:
    old = ['("a" OR "b") -is:retweet', '("c" OR "d") -is:retweet']
    since = {old[0]: "200", old[1]: "100"}
    new = [old[0], '("a" OR "c") -is:retweet', '("d" OR "new") -is:retweet']
    assert carry_since_ids(since, new) == {old[0]: "200", new[1]: "100"}


def test_terms_of_splits_only_top_level_ors() -> None:
    query = '("a b" OR (("Dr X" OR "Dr Y") (Leeds OR "x OR y")) OR @z) -is:retweet'
    assert terms_of(query) == ['"a b"', '(("Dr X" OR "Dr Y") (Leeds OR "x OR y"))', "@z"]
    assert terms_of('"a" OR "b"') == ['"a"', '"b"']


def planned_terms(entities: list[Entity], **options: object) -> list[str]:
    return [term.text for term in query_terms(entities, **options)]  # type: ignore[arg-type]


def test_a_rare_name_and_an_x_handle_are_searched_alone() -> None:
    terms = planned_terms(ENTITIES)
    assert '"Tobias Greenwood"' in terms
    assert "@drdansmith" in terms
    assert '"Meanwood Health Centre"' in terms


def test_only_x_handles_are_searched_on_x() -> None:
    text = " ".join(planned_terms(ENTITIES))
    assert "@drheleningram" in text
    assert "bsky" not in text
    mastodon = doctor(1, "7000001", ("Ewan Quillfeather",), None, ("@ewan@mastodon.social", "u/ewanq"))
    terms = planned_terms([mastodon])
    assert '"Ewan Quillfeather"' in terms
    assert not any("mastodon" in term or "ewanq" in term for term in terms)


def test_an_ambiguous_name_is_searched_only_with_its_context() -> None:
    terms = planned_terms(ENTITIES)
    leeds = next(term for term in terms if '"Daniel Smith"' in term)
    assert leeds.startswith('(("') and leeds.endswith("(Leeds OR Meanwood))")
    assert '"Dr Smith"' in leeds
    exeter = next(term for term in terms if '"Helen Smith"' in term)
    assert exeter in (
        '(("Dr Smith" OR "Helen Smith") (Exeter OR Heavitree))',
        '(("Helen Smith" OR "Dr Smith") (Exeter OR Heavitree))',
    )
    assert not any(term == '"Dr Smith"' or term == '"Daniel Smith"' for term in terms)


def test_a_rare_surname_is_searched_with_medical_context() -> None:
    term = next(term for term in planned_terms(ENTITIES) if '"Dr Norcross"' in term)
    for word in ("appointment", "GP", "receptionist", "NHS", "Meanwood", "Leeds"):
        assert word in term


def test_context_words_are_configurable() -> None:
    term = next(t for t in planned_terms(ENTITIES, context_words=["clinic"]) if '"Dr Norcross"' in t)
    assert "clinic" in term and "appointment" not in term


def test_a_specialist_is_searched_with_the_specialty() -> None:
    assert '("Dr Patel" (cardiologist OR cardiology OR Leeds))' in planned_terms(ENTITIES)


def test_a_generic_practice_name_is_searched_with_its_town() -> None:
    terms = planned_terms(ENTITIES)
    assert '("Riverside Surgery" Norwich)' in terms
    assert '("Riverside Medical Centre" Leeds)' in terms


def test_famous_namesakes_exclude_the_namesakes_words_one_by_one() -> None:
    term = next(term for term in planned_terms(ENTITIES) if term.startswith('("Harry Kane"'))
    assert term.startswith('("Harry Kane" ("Thorpe St Andrew" OR Norwich)')
    assert " -football " in term and ' -"england captain"' in term
    assert len(term) <= 512


def test_a_namesakes_words_exclude_only_that_name_not_the_doctors_other_names() -> None:
    terms = planned_terms(ENTITIES)
    assert '"Amelia Pepper"' in terms
    assert '-"bottle of"' in next(term for term in terms if term.startswith('("Dr Pepper"'))
    assert "-goal" not in next(term for term in terms if term.startswith('("Dr Kane"'))


def test_exclusion_settings_become_negated_terms() -> None:
    terms = planned_terms(ENTITIES, exclusions={"7000198": ["Sherlock", "Baker Street"]})
    assert '("Tobias Greenwood" -"Baker Street" -Sherlock)' in terms


def test_without_the_retweet_suffix_queries_are_plain_or_groups() -> None:
    queries = plan_queries(ENTITIES, exclude_retweets=False)
    for query in queries:
        assert_valid_x_query(query, 512, suffix="")
        assert "is:retweet" not in query
    assert sorted(t for q in queries for t in terms_of(q)) == sorted(planned_terms(ENTITIES, suffix=""))


def test_a_term_longer_than_the_limit_is_an_error_naming_the_entity() -> None:
    long_name = "Tobias " + "Quillfeather" * 50
    entity = doctor(1, "7000123", (long_name,), None)
    with pytest.raises(QueryPlanError, match=r"doctor Tobias Quill\w+ \(GMC 7000123\): the X query term"):
        plan_queries([entity])


def test_a_name_too_long_to_search_with_its_context_is_an_error_naming_the_entity() -> None:
    entity = doctor(1, "7000321", ("Sarah Smith",), MEANWOOD)
    with pytest.raises(QueryPlanError, match=r"doctor Sarah Smith \(GMC 7000321\)"):
        plan_queries([entity], max_length=40)


@pytest.mark.parametrize(
    ("terms", "max_length", "suffix", "expected"),
    [
        ([], 512, " -is:retweet", 0),
        (["aaaa", "bbbb"], 20, "", 1),  # "aaaa OR bbbb" is 12 characters
        (["a" * 10] * 3, 20, "", 2),  # 3 x (10 + 4) = 42 characters over 24 a query
        (["a" * 10] * 3, 512, " -is:retweet", 1),
    ],
)
def test_the_lower_bound_counts_characters_and_separators(
    terms: list[str], max_length: int, suffix: str, expected: int
) -> None:
    assert query_cost_lower_bound(terms, max_length=max_length, suffix=suffix) == expected


def test_no_plan_beats_the_lower_bound(register: list[Entity]) -> None:
    for max_length in (200, 512, 4096):
        queries = plan_queries(register, max_length=max_length)
        terms = [term.text for term in query_terms(register, max_length=max_length)]
        bound = query_cost_lower_bound(terms, max_length=max_length)
        assert bound <= len(queries)
        assert bound >= math.ceil(sum(len(term) for term in terms) / max_length)


def test_queries_use_the_same_matching_settings_as_the_matcher(settings: Settings) -> None:
    configured = settings.with_overrides(
        matching__exclusions={"7000198": ["Sherlock"]}, matching__context_words=["clinic"]
    )
    queries = plan_queries_from_settings(configured, ENTITIES, max_length=512)
    text = " ".join(queries)
    assert '("Tobias Greenwood" -Sherlock)' in text
    assert "clinic" in text and "receptionist" not in text
    assert queries == plan_queries(ENTITIES, context_words=["clinic"], exclusions={"7000198": ["Sherlock"]})
