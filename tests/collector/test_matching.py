"""Matching: every ambiguity rule, the false-positive corpus, and the reasons users are shown."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from collector.matching import (
    MEDICAL_CONTEXT,
    Entity,
    EntityMatch,
    Matcher,
    MatcherCache,
    MatchingError,
    load_entities,
    matcher_from_settings,
    register_version,
)
from collector.names import CommonNames, CommonNamesError
from collector.post import Post
from tests.collector.register import ENTITIES, MEANWOOD, doctor
from tests.conftest import Tenancy
from vigil.models import Doctor
from vigil.settings import Settings, read_declarations


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return Matcher.from_entities(ENTITIES, exclusions={"7000198": ["Sherlock"]})


def post(text: str, in_reply_to: str | None = None, author: str = "someone") -> Post:
    return Post(
        "x",
        "1",
        "https://x.example/1",
        author,
        datetime(2026, 1, 5, tzinfo=UTC),
        text,
        in_reply_to=in_reply_to,
    )


def named(matches: list[EntityMatch]) -> set[str]:
    """Each match as "doctor:<id>" or "practice:<id>", for compact expectations."""
    return {f"doctor:{m.doctor_id}" if m.doctor_id else f"practice:{m.practice_id}" for m in matches}


def test_the_default_medical_context_is_the_declared_setting_default() -> None:
    assert tuple(read_declarations()["matching.context_words"].default) == MEDICAL_CONTEXT


AMBIGUITY = [
    # a surname alone, or a common name, needs context
    ("Dr Smith is so rude", set()),
    ("Daniel Smith is so rude", set()),
    ("Daniel Smith from Leeds is so rude", {"doctor:1"}),
    # two registered Dr Smiths: the context picks one, or none
    ("Dr Smith in Exeter is so rude", {"doctor:2"}),
    ("Dr Smith at Meanwood Health Centre", {"doctor:1", "practice:101"}),
    ("Dr Smith at the Heavitree surgery", {"doctor:2", "practice:102"}),
    ("Dr Smith, Leeds or Exeter, who knows", set()),
    # the distinctive part of a practice's name places its doctors, but is no mention of it alone
    ("Dr Dan Smith at Meanwood sorted my knee", {"doctor:1"}),
    ("Dr Smith at Heavitree was lovely", {"doctor:2"}),
    ("Walked through Meanwood park today", set()),
    # a generic practice core ("Riverside") places nobody
    ("Dr Smith at Riverside was lovely", set()),
    ("Dr Smith is my GP", set()),  # general practice cannot tell two GPs apart
    # the stronger context wins: practice (via its handle) beats a town
    ("Dr Smith @meanwoodhealthgp not the one in Exeter", {"doctor:1", "practice:101"}),
    # ...but not when the other candidate's context is nearer the name: the post places both
    ("Dr Morrison at Heavitree Surgery was great, unlike Dr Smith in Leeds", {"practice:102"}),
    # a GMC number or a handle settles it
    ("Dr Smith (GMC 7000047)", {"doctor:2"}),
    ("Dr Smith aka @drdansmith", {"doctor:1"}),
    # two doctors named Morrison at the same practice: nothing tells them apart
    ("Dr Morrison at Meanwood Health Centre", {"practice:101"}),
    # a rare surname needs only medical context
    ("Dr Norcross was rude at my appointment", {"doctor:7"}),
    ("Dr Norcross is my GP", {"doctor:7"}),
    ("Dr Norcross was rude", set()),
    # a common surname with a specialty other than general practice
    ("Dr Patel the cardiologist ignored me", {"doctor:8"}),
    ("Dr Patel ignored me", set()),
    # a rare full name is enough on its own
    ("Tobias Greenwood is wonderful", {"doctor:6"}),
    ("Helen Ingram is wonderful", {"doctor:10"}),
    # a generic practice name shared by two practices needs the town
    ("Riverside Surgery never answers the phone", set()),
    ("Riverside Surgery in Norwich never answers", {"practice:106"}),
    ("Riverside surgery, Leeds: awful", {"practice:107"}),
]


@pytest.mark.parametrize(("text", "expected"), AMBIGUITY)
def test_ambiguous_names_need_context(matcher: Matcher, text: str, expected: set[str]) -> None:
    assert named(matcher.match(post(text))) == expected


REPLIES = [
    # a reply to the doctor's own account is context, and a mention on its own
    ("Dr Smith you should be struck off", "drdansmith", "someone", {"doctor:1"}),
    ("you should be struck off", "@drdansmith", "someone", {"doctor:1"}),
    ("you should be struck off", "heleningram.bsky.social", "someone", {"doctor:10"}),
    ("Dr Smith is the best", "meanwoodhealthgp", "someone", {"doctor:1", "practice:101"}),
    # the doctor's own thread is not a mention
    ("more on this below", "drdansmith", "drdansmith", set()),
    ("a reply to someone else", "somebodyelse", "someone", set()),
]


@pytest.mark.parametrize(("text", "reply_to", "author", "expected"), REPLIES)
def test_a_reply_to_the_entitys_own_account_counts(
    matcher: Matcher, text: str, reply_to: str, author: str, expected: set[str]
) -> None:
    assert named(matcher.match(post(text, in_reply_to=reply_to, author=author))) == expected


FALSE_POSITIVES = [
    "Harry Kane scores again for Spurs",
    "Harry Kane scored against Norwich last night",
    "Harry Kane, England captain",
    "Harry Kane",
    "grabbed a can of Dr Pepper",
    "a can of Dr Pepper in Bristol",
    "diet Dr Pepper is the best, Bristol agrees",
    "Dr Pepper",
    "Doctor Who is back on BBC One",
    "Dr Who and the Daleks",
    "Dr Dre's new album",
    "new Dr Martens boots from a shop in Leeds",
    "Dr Watson and Sherlock Holmes in Harrogate",
    "Tobias Greenwood plays Sherlock",  # settings exclusion for 7000198
    "Dr Patella",
    "Dr Smithson in Leeds",
    "Dr Kanes in Norwich",
    "Mr Kaneshiro in Leeds",  # a surname needs "Dr", not "Mr"
    "Meanwood is lovely in spring",
    "@drdansmithy said hello",
    "70000011 is not a GMC number",
    "GMC7000001",
    "Dr Smith-Jones in Leeds",  # a double-barrelled name is not Dr Smith
    "Harry Kane booed at Carrow Road by Norwich fans",
    "Dr Kane vs Norwich City tonight",  # a club is not its town
    "Dr Smith in Exeter City's shirt",
]


@pytest.mark.parametrize("text", FALSE_POSITIVES)
def test_the_false_positive_corpus_matches_nothing(matcher: Matcher, text: str) -> None:
    assert matcher.match(post(text)) == []


TRUE_POSITIVES = [
    ("Harry Kane, my GP at Thorpe St Andrew Medical Centre", {"doctor:3", "practice:103"}),
    ("Dr Kane in Norwich was rude at my appointment", {"doctor:3"}),
    ("Dr Pepper in Bristol was rude to me", {"doctor:4"}),
    ("@ameliapeppergp is useless", {"doctor:4"}),
    ("Dr Martens at Meanwood Health Centre", {"doctor:9", "practice:101"}),
    ("Dr Watson at Knaresborough Road Surgery", {"doctor:5", "practice:105"}),
    ("Dr Smith-Jones in Exeter", {"doctor:13"}),
    ("Dr Smith Jones in Exeter", {"doctor:13"}),
    ("Anna Smith-Jones", {"doctor:13"}),
]


@pytest.mark.parametrize(("text", "expected"), TRUE_POSITIVES)
def test_namesakes_with_context_still_match(matcher: Matcher, text: str, expected: set[str]) -> None:
    assert named(matcher.match(post(text))) == expected


OTHER_NAMES_OF_A_NAMESAKE = [
    # a namesake's words rule out the famous name, not the doctor's other names
    ("Amelia Pepper is going to get a bottle of acid in her face", {"doctor:4"}),
    ("Dr Kane in Norwich: my goal now is to make you suffer", {"doctor:3"}),
    ("a bottle of Dr Pepper in Bristol", set()),
]


@pytest.mark.parametrize(("text", "expected"), OTHER_NAMES_OF_A_NAMESAKE)
def test_a_namesakes_words_do_not_hide_the_doctors_other_names(
    matcher: Matcher, text: str, expected: set[str]
) -> None:
    assert named(matcher.match(post(text))) == expected


BOUNDARIES_AND_SPELLINGS = [
    ("Dr Patel's clinic, cardiology", {"doctor:8"}),
    ("DR PATEL, CARDIOLOGIST", {"doctor:8"}),
    ("Doctor Patel the cardiologist", {"doctor:8"}),
    ("Dr. Patel (cardiology)", {"doctor:8"}),
    ("Dr Kane's clinic in Norwich, GP", {"doctor:3"}),
    ("Dr Kanes' clinic in Norwich, GP", {"doctor:3"}),  # plural possessive
    ("Dr Kane-Smith in Norwich, GP", set()),
    ("Dr Ѕmіth in Exeter", {"doctor:2"}),  # Cyrillic look-alikes
    ("Dr Sm1th in Exeter", {"doctor:2"}),
    ("Dr S\u200bmith in Exeter", {"doctor:2"}),
    ("T0bias Greenw00d", {"doctor:6"}),
    ("He1en Ingram", {"doctor:10"}),  # a "1" read as "l"
    ("Tоbias Grееnwood", {"doctor:6"}),
    # an "@" inside a name stands for "a" or "o"
    ("Dr P@tel the cardiologist", {"doctor:8"}),
    ("Dr N@rcross was rude at my appointment", {"doctor:7"}),
    ("Dr N@rcr@ss was rude at my appointment", {"doctor:7"}),
    ("He1en Ingr@m", {"doctor:10"}),  # a "1" read as "l" and an "@" as "a"
    ("Dr P@7el the cardiologist", {"doctor:8"}),  # an "@" and a "7" in a row
    # ...but not an "@" beside a number: a time, a price, a handle, an address
    ("Dr Patel@7pm, the cardiologist", {"doctor:8"}),
    ("Dr P @7el the cardiologist", set()),
    ("write to dr.p@7el.com, the cardiologist", set()),
    ("Dr P, 2@7pm, the cardiologist", set()),
    ("Me@nwood Health Centre never answers", {"practice:101"}),
    ("the Me@nwood surgery", {"practice:101"}),
    # ...or is a word break after all: a name glued to a handle or an "at"
    ("Dr Smith@meanwoodhealthgp is rude", {"doctor:1"}),
    ("Dr Norcross@meanwood at my appointment", {"doctor:7"}),
    ("Tobias Greenwood@Meanwood Health Centre", {"doctor:6"}),
    ("@DrDanSmith's surgery", {"doctor:1"}),
    ("@heleningram.bsky.social", {"doctor:10"}),
    ("heleningram.bsky.social wrote", {"doctor:10"}),
    ("@DrDanSmith. Awful.", {"doctor:1"}),
    ("@heleningram.bsky.social.", {"doctor:10"}),
    # someone else's handle or address that merely starts or ends with a registered handle
    ("@drdansmith.bsky.social you should be struck off", set()),
    ("@drdansmith@mastodon.social you should be struck off", set()),
    ("write to info@drdansmith.co.uk", set()),
    ("x@drdansmith is awful", set()),
    ("x@DrDanSmith is awful", set()),
    # an email address is not read for an "@" standing for a letter; the name in it still counts
    ("write to reception@meanwood-health-centre.nhs.uk", set()),
    ("write to tobias.greenwood@nhs.net", {"doctor:6"}),
    ("@fake.heleningram.bsky.social", set()),
    ("Meanwood Health Centre", {"practice:101"}),
    ("the Meanwood surgery", {"practice:101"}),
    ("Meanwood GP practice", {"practice:101"}),
    ("MEANWOOD HEALTH CENTRE's receptionist", {"practice:101"}),
    ("ODS X90001", {"practice:101"}),
    # a GMC number says so; seven digits alone may be a phone number and need context
    ("GMC number: 7000001", {"doctor:1"}),
    ("GMC reference number 7000001", {"doctor:1"}),
    ("call 0113 7000001 today", set()),
    ("call 0113 7000047, Exeter", {"doctor:2"}),
]


@pytest.mark.parametrize(("text", "expected"), BOUNDARIES_AND_SPELLINGS)
def test_it_respects_word_boundaries_and_sees_through_spellings(
    matcher: Matcher, text: str, expected: set[str]
) -> None:
    assert named(matcher.match(post(text))) == expected


REASONS = [
    ("@drdansmith is awful", "@drdansmith", "handle @drdansmith"),
    ("GMC 7000001", "7000001", "GMC number 7000001"),
    ("7000047, Exeter", "7000047", "GMC number '7000047' (without the word GMC) + town 'Exeter'"),
    ("Tobias Greenwood!", "Tobias Greenwood", "name 'Tobias Greenwood'"),
    ("Meanwood Health Centre", "Meanwood Health Centre", "practice name 'Meanwood Health Centre'"),
    (
        "Dr. Ѕmіth's receptionist in Exeter",
        "Dr. Ѕmіth",
        "name 'Dr. Ѕmіth' (shared by 2 registered doctors) + town 'Exeter'",
    ),
    (
        "Dr Norcross was rude at my appointment",
        "Dr Norcross",
        "name 'Dr Norcross' (surname only) + medical context 'appointment'",
    ),
    (
        "Dr N@rcross was rude at my appointment",
        "Dr N@rcross",
        "name 'Dr N@rcross' (surname only) + medical context 'appointment'",
    ),
    ("Me@nwood Health Centre", "Me@nwood Health Centre", "practice name 'Me@nwood Health Centre'"),
    (
        "Harry Kane at Thorpe St Andrew Medical Centre",
        "Harry Kane",
        "name 'Harry Kane' (shares a famous name) + practice 'Thorpe St Andrew Medical Centre'",
    ),
    (
        "Dr Patel the cardiologist",
        "Dr Patel",
        "name 'Dr Patel' (common surname, surname only) + specialty 'cardiologist'",
    ),
]


@pytest.mark.parametrize(("text", "matched_text", "reason"), REASONS)
def test_each_match_says_what_was_matched_and_why(
    matcher: Matcher, text: str, matched_text: str, reason: str
) -> None:
    first = matcher.match(post(text))[0]
    assert (first.matched_text, first.reason) == (matched_text, reason)


def test_a_reply_match_names_the_account_replied_to(matcher: Matcher) -> None:
    (match,) = matcher.match(post("you are a disgrace", in_reply_to="drdansmith"))
    assert (match.doctor_id, match.matched_text, match.reason) == (1, "@drdansmith", "reply to @drdansmith")


def test_several_mentions_of_one_entity_make_one_match_with_every_span(matcher: Matcher) -> None:
    (match,) = matcher.match(post("Tobias Greenwood, yes T0bias Greenwood, GMC 7000198"))
    assert match.doctor_id == 6
    assert match.matched_text == "Tobias Greenwood; T0bias Greenwood; 7000198"
    assert match.reason == "name 'Tobias Greenwood'; name 'T0bias Greenwood'; GMC number 7000198"


def test_matches_come_in_the_order_of_the_text(matcher: Matcher) -> None:
    matches = matcher.match(post("Tobias Greenwood and @ameliapeppergp at Meanwood Health Centre"))
    assert [(m.doctor_id, m.practice_id) for m in matches] == [(6, None), (4, None), (None, 101)]


SPELLINGS = [
    Entity("practice", 201, "Y20001", ("Church & Oswald Medical Centre",), (), "Leeds"),
    Entity("practice", 202, "Y20002", ("Kirk and Vale Surgery",), (), "York"),
    Entity("practice", 203, "Y20003", ("St Mary's Surgery",), (), "Exeter"),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Church and Oswald Medical Centre never answer", {"practice:201"}),
        ("Church & Oswald Medical Centre never answer", {"practice:201"}),
        ("Kirk & Vale Surgery never answer", {"practice:202"}),
        ("Kirk and Vale Surgery never answer", {"practice:202"}),
        ("St Marys Surgery in Exeter never answer", {"practice:203"}),
        ("St Mary’s Surgery in Exeter never answer", {"practice:203"}),
        ("St Mary's Surgery never answer", set()),  # a saint's name is shared: it needs the town
        ("Oswald Medical Centre never answer", set()),  # half a name is not the name
    ],
)
def test_a_practice_name_matches_however_and_and_possessives_are_written(
    text: str, expected: set[str]
) -> None:
    assert named(Matcher.from_entities(SPELLINGS).match(post(text))) == expected


ST_JAMES = Entity("practice", 306, "Y30006", ("St James' Surgery",), (), "Newcastle")
NAMES_FOUND_ELSEWHERE = [
    Entity("practice", 301, "Y30001", ("Dr Patel's Surgery",), (), "Leicester"),
    Entity("practice", 302, "Y30002", ("Dr Khan & Partners",), (), "Bradford"),
    Entity("practice", 303, "Y30003", ("Station Road Surgery",), (), "Leeds"),
    Entity("practice", 304, "Y30004", ("London Road Surgery",), (), "Derby"),
    Entity("practice", 305, "Y30005", ("St Thomas' Medical Centre",), (), "Exeter"),
    ST_JAMES,
    Entity("practice", 307, "Y30007", ("Knaresborough Road Surgery",), (), "Harrogate"),
    doctor(31, "7100001", ("Ian Shah",), ST_JAMES),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a practice named after a doctor: there is a "Dr Patel's surgery" in every town
        ("Went to Dr Patel's surgery in Manchester, the receptionist was vile", set()),
        ("Dr Patel's Surgery in Leicester never answers", {"practice:301"}),
        ("Dr P@tel's Surgery in Leicester never answers", {"practice:301"}),
        ("Dr Khan & Partners never answer the phone", set()),
        # a street found in every town
        ("Station Road Surgery is a joke", set()),
        ("Station Road Surgery in Leeds is a joke", {"practice:303"}),
        ("London Road Surgery is a joke", set()),
        ("Knaresborough Road Surgery is a joke", {"practice:307"}),  # a street of one town
        # a saint's name is shared however its possessive is written ("St Thomas'")
        ("St Thomas' Medical Centre in London, awful", set()),
        ("St Thomas' Medical Centre in Exeter, awful", {"practice:305"}),
        ("Dr Shah at St James' Park was rude", set()),
    ],
)
def test_a_practice_name_found_in_other_towns_needs_the_town(text: str, expected: set[str]) -> None:
    assert named(Matcher.from_entities(NAMES_FOUND_ELSEWHERE).match(post(text))) == expected


STRAY = Entity("practice", 309, "X90017", ("Stray Medical Practice",), ("@straymedicalgp",), "Harrogate")
OAK_TREE = Entity("practice", 310, "Y30010", ("Oak Tree Surgery",), (), "Leeds")
EVERYDAY_WORDS = [
    STRAY,
    OAK_TREE,
    doctor(33, "7100003", ("Olivia Smith",), STRAY),
    doctor(34, "7100004", ("Ewan Penhaligon",), STRAY),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # the everyday word in ordinary text names no practice, and places no doctor
        ("a stray practice shot hit the crossbar", set()),
        ("the stray surgery cat had kittens", set()),
        ("stray doctors wandering the ward", set()),
        ("a stray GP appointment came up", set()),
        ("Dr Smith and a stray dog", set()),
        ("Dr Penhaligon chased a stray cat", set()),
        ("Dr Smith at the stray surgery", set()),
        ("we booked oak tree surgery for the garden", set()),
        # written as a name, with a capital, or the registered name in full, it is the practice
        ("Stray Medical Practice never answers", {"practice:309"}),
        ("stray medical practice never answers", {"practice:309"}),
        ("the Stray surgery never answers", {"practice:309"}),
        ("STRAY GP is useless", {"practice:309"}),
        ("Dr Smith at the Stray surgery", {"doctor:33", "practice:309"}),
        ("Dr Smith at Stray Medical Practice", {"doctor:33", "practice:309"}),
        ("Oak Tree Surgery never answers", {"practice:310"}),
        ("the oak tree surgery in Leeds never answers", {"practice:310"}),
    ],
)
def test_a_practice_named_after_an_everyday_word_needs_it_written_as_a_name(
    text: str, expected: set[str]
) -> None:
    assert named(Matcher.from_entities(EVERYDAY_WORDS).match(post(text))) == expected


def test_an_everyday_word_in_lower_case_says_it_needed_the_place() -> None:
    (match,) = Matcher.from_entities(EVERYDAY_WORDS).match(post("the oak tree surgery in Leeds"))
    assert match.reason == (
        "practice name 'oak tree surgery' (everyday words, not written as a name) + town 'Leeds'"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Dr Smith was reading my notes out loud and laughing", set()),
        ("Dr Smith in Reading was rude", {"doctor:32"}),
    ],
)
def test_a_town_that_is_also_a_word_places_a_name_only_when_capitalised(
    text: str, expected: set[str]
) -> None:
    reading = Entity("practice", 308, "Y30008", ("Tilehurst Village Surgery",), (), "Reading")
    matcher = Matcher.from_entities([reading, doctor(32, "7100002", ("Mark Smith",), reading)])
    assert named(matcher.match(post(text))) == expected


def test_a_match_is_a_doctor_or_a_practice_never_both(matcher: Matcher) -> None:
    for match in matcher.match(post("Dr Smith at Meanwood Health Centre @drdansmith")):
        assert (match.doctor_id is None) != (match.practice_id is None)


def test_the_matched_text_fits_the_stored_column() -> None:
    long_name = "Tobias " + "Greenwood" * 40
    entity = doctor(1, "7000001", (long_name,), None)
    (match,) = Matcher.from_entities([entity]).match(post(f"{long_name} and again {long_name.upper()}"))
    assert len(match.matched_text) == 255
    assert match.matched_text.endswith("…")


EXCLUSIONS = [
    # (exclusions setting, post, expected)
    ({}, "Tobias Greenwood scored a goal", {"doctor:6"}),
    ({"7000198": ["goal"]}, "Tobias Greenwood scored a goal", set()),
    ({"7000198": ["Goal!"]}, "Tobias Greenwood scored a GOAL", set()),
    ({"7000198": ["penalty kick"]}, "Tobias Greenwood took a penalty kick", set()),
    ({"7000198": ["penalty kick"]}, "Tobias Greenwood took a penalty", {"doctor:6"}),
    ({"7000198": ["goal"]}, "@drdansmith and Tobias Greenwood: goal", {"doctor:1"}),
    ({"7000001": ["goal"]}, "@drdansmith scored a goal", {"doctor:1"}),  # a handle is not a name
    ({"X90001": ["football"]}, "Meanwood Health Centre football team", set()),
    ({"7000047": ["Exeter City"]}, "Dr Smith, Exeter City striker", set()),
]


@pytest.mark.parametrize(("exclusions", "text", "expected"), EXCLUSIONS)
def test_exclusion_terms_drop_known_false_positives(
    exclusions: dict[str, list[str]], text: str, expected: set[str]
) -> None:
    matcher = Matcher.from_entities(ENTITIES, exclusions=exclusions)
    assert named(matcher.match(post(text))) == expected


def test_an_exclusion_for_an_unknown_entity_is_logged_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    Matcher.from_entities(ENTITIES, exclusions={"7999999": ["x"]})
    assert "7999999" in caplog.text


def test_the_common_names_list_decides_what_needs_context() -> None:
    entities = [doctor(1, "7000001", ("Ewan Norcross",), MEANWOOD), MEANWOOD]
    rare = Matcher.from_entities(entities, common_names=CommonNames())
    common = Matcher.from_entities(entities, common_names=CommonNames.parse("[surnames]\nNorcross\n"))
    text = "Dr Norcross was rude at my appointment"
    assert named(rare.match(post(text))) == {"doctor:1"}
    assert common.match(post(text)) == []
    assert named(common.match(post("Dr Norcross at Meanwood Health Centre"))) == {"doctor:1", "practice:101"}


def test_context_words_are_configurable() -> None:
    entities = [doctor(1, "7000001", ("Ewan Norcross",), None, specialty="")]
    default = Matcher.from_entities(entities)
    custom = Matcher.from_entities(entities, context_words=["consultation"])
    assert named(default.match(post("Dr Norcross cancelled my appointment"))) == {"doctor:1"}
    assert custom.match(post("Dr Norcross cancelled my appointment")) == []
    assert named(custom.match(post("Dr Norcross cancelled my consultation"))) == {"doctor:1"}


def test_the_bundled_common_names_file_is_well_formed() -> None:
    common = CommonNames.bundled()
    assert {"smith", "patel", "jones"} <= common.surnames
    assert {"james", "sarah"} <= common.first_names
    assert "tottenham" in common.namesakes["harry kane"]
    assert "riverside" in common.generic_practice_names
    assert "stray" in common.everyday_words


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("smith\n", "common names:1: 'smith' comes before any [section]"),
        ("[surnames]\n[nicknames]\n", "common names:2: unknown section [nicknames]"),
        ("[namesakes]\n!!!: a, b\n", "common names:2: '!!!: a, b' has no letters to match"),
    ],
)
def test_a_malformed_common_names_file_is_rejected_with_its_line(text: str, message: str) -> None:
    with pytest.raises(CommonNamesError, match="^" + message.replace("[", r"\[").replace("]", r"\]")):
        CommonNames.parse(text)


# --- the register in the database, the cache and the settings -------------------------------


def test_it_loads_every_doctor_and_practice_from_the_register(
    session: Session, alice: Tenancy, bob: Tenancy
) -> None:
    amira = alice.doctors[0]
    amira.aliases = ["Dr Hassan"]
    amira.handles = ["@drhassan"]
    amira.specialty = "General practice"
    amira.town = ""
    alice.practice.handles = ["@aliceroad"]
    session.commit()
    entities = {(e.kind, e.key): e for e in load_entities(session)}
    assert entities["practice", "A10001"] == Entity(
        "practice", alice.practice.id, "A10001", ("Alice Road Surgery",), ("@aliceroad",), town="Leeds"
    )
    assert entities["doctor", "1000001"] == Entity(
        "doctor",
        amira.id,
        "1000001",
        ("Amira Hassan", "Dr Hassan"),
        ("@drhassan",),
        town="Leeds",  # the practice's, since the doctor has none
        specialty="General practice",
        practice_id=alice.practice.id,
        practice_names=("Alice Road Surgery",),
        practice_handles=("@aliceroad",),
    )
    assert len(entities) == 4


def test_a_doctor_without_a_practice_is_loaded_too(session: Session) -> None:
    session.add(Doctor(gmc_number="7654321", full_name="Nadia Locum", aliases=[], handles=[], town="York"))
    session.commit()
    (entity,) = load_entities(session)
    assert (entity.practice_id, entity.practice_names, entity.town) == (None, (), "York")


def test_the_register_version_changes_with_every_change(session: Session, alice: Tenancy) -> None:
    versions = [register_version(session)]
    assert register_version(session) == versions[-1]
    alice.doctors[0].aliases = ["Dr Amira"]
    session.commit()
    versions.append(register_version(session))
    extra = Doctor(
        gmc_number="1000009", full_name="Zed Extra", aliases=[], handles=[], practice=alice.practice
    )
    session.add(extra)
    session.commit()
    versions.append(register_version(session))
    session.delete(extra)
    session.commit()
    versions.append(register_version(session))
    alice.practice.name = "Alice Road Medical Centre"
    session.commit()
    versions.append(register_version(session))
    assert all(before != after for before, after in pairwise(versions))


def test_the_cache_rebuilds_the_matcher_only_when_the_register_changes(
    session: Session, settings: Settings, alice: Tenancy
) -> None:
    cache = MatcherCache()
    first = cache.get(session, settings)
    assert cache.get(session, settings) is first
    assert first.match(post("Amira Hassan from Leeds")) != []
    assert first.match(post("Zainab Quartermaine is rude")) == []
    session.add(
        Doctor(
            gmc_number="1000002",
            full_name="Zainab Quartermaine",
            aliases=[],
            handles=[],
            practice=alice.practice,
        )
    )
    session.commit()
    second = cache.get(session, settings)
    assert second is not first
    assert named(second.match(post("Zainab Quartermaine is rude"))) == {
        f"doctor:{alice.practice.doctors[-1].id}"
    }


def test_the_cache_rebuilds_when_the_matching_settings_change(
    session: Session, settings: Settings, alice: Tenancy
) -> None:
    cache = MatcherCache()
    text = "Amira Hassan from Leeds on the radio"
    assert cache.get(session, settings).match(post(text)) != []
    excluding = settings.with_overrides(matching__exclusions={"1000001": ["radio"]})
    assert cache.get(session, excluding).match(post(text)) == []


def test_settings_configure_the_matcher(tmp_path: Path, settings: Settings) -> None:
    names = tmp_path / "names.txt"
    names.write_text("[namesakes]\nTobias Greenwood: football\n", encoding="utf-8")
    configured = settings.with_overrides(matching__common_names_file=str(names))
    matcher = matcher_from_settings(configured, ENTITIES)
    assert matcher.match(post("Tobias Greenwood")) == []
    assert named(matcher.match(post("Tobias Greenwood at Meanwood Health Centre"))) == {
        "doctor:6",
        "practice:101",
    }
    assert matcher.match(post("Tobias Greenwood at Meanwood Health Centre football")) == [
        EntityMatch(None, 101, "Meanwood Health Centre", "practice name 'Meanwood Health Centre'")
    ]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"matching__exclusions": {"Harry": ["goal"]}}, "setting matching.exclusions: 'Harry' is neither"),
        ({"matching__common_names_file": "/nonexistent/names.txt"}, "setting matching.common_names_file: "),
    ],
)
def test_bad_matching_settings_fail_naming_the_setting(
    settings: Settings, overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(MatchingError, match=message):
        matcher_from_settings(settings.with_overrides(**overrides), ENTITIES)


def test_a_loaded_register_places_a_common_surname_by_its_practice(session: Session, bob: Tenancy) -> None:
    assert bob.practice is not None
    matcher = Matcher.from_entities(load_entities(session))
    doctor_id, practice_id = bob.doctors[0].id, bob.practice.id
    assert named(matcher.match(post("Dr Osei at Bob Lane Practice was rude"))) == {
        f"doctor:{doctor_id}",
        f"practice:{practice_id}",
    }
    assert named(matcher.match(post("Dr Osei in Bristol was rude"))) == {f"doctor:{doctor_id}"}
    assert matcher.match(post("Dr Osei was rude")) == []
