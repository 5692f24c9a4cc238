"""Campaigns: near-identical wording or one author about several members, not merely similar complaints."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from cases.detect import DetectionSettings
from cases.fingerprint import normalise, similarity
from cases.views import explain
from tests.cases.conftest import T0, Entity, Post, cases_of, hours, run_detection
from tests.conftest import Tenancy, make_practice_tenant
from vigil.models import CaseEntity, Severity

TEMPLATE = "Dr {name} at {practice} misdiagnosed my son and then covered it up. Do NOT trust this doctor!"
VARIANTS = [
    "Dr {name} at {practice} misdiagnosed my son and then covered it up. Do NOT trust this doctor!",
    "{name} ({practice}) misdiagnosed my son and then covered it up!! do not trust this doctor",
    "Dr {name} at {practice} misdiagnosed my daughter and then covered it up. Do NOT trust this doctor https://t.co/x1",
    "RT Dr {name} at {practice} misdiagnosed my son and covered it up - do NOT trust this doctor!",
]
SIMILAR_COMPLAINTS = [
    "Waited three weeks for an appointment with Dr {name} at {practice}, absolutely useless service.",
    "Couldn't get an appointment at {practice} for two weeks. Dr {name} never calls back. Terrible, avoid.",
    "{practice} receptionists are rude and you can never get an appointment with Dr {name}. Useless.",
    "Dr {name} was dismissive and rude at {practice}, didn't listen to a word I said. Awful doctor.",
]


def practices(session: Session, count: int) -> list[Tenancy]:
    """``count`` more practices, each with one doctor."""
    return [
        make_practice_tenant(
            session, f"P{n:05d}", f"Practice {n}", "Leeds", [(f"{9000000 + n}", f"Doc Number{n}")]
        )
        for n in range(count)
    ]


def named(tenancy: Tenancy) -> tuple[Entity, ...]:
    """A post's entities as the collector matches them: the doctor and, named too, their practice."""
    assert tenancy.practice is not None
    return (tenancy.doctors[0], tenancy.practice)


def about(tenancy: Tenancy, text: str) -> str:
    assert tenancy.practice is not None
    return text.format(name=tenancy.doctors[0].full_name, practice=tenancy.practice.name)


def test_masked_copies_are_near_identical_and_similar_complaints_are_not(
    alice: Tenancy, bob: Tenancy
) -> None:
    def norm(t: Tenancy, text: str) -> str:
        assert t.practice is not None
        return normalise(about(t, text), [t.doctors[0].full_name, t.practice.name])

    copies = [norm(t, v) for t, v in zip([alice, bob, alice, bob], VARIANTS, strict=True)]
    complaints = [norm(t, c) for t, c in zip([alice, bob, alice, bob], SIMILAR_COMPLAINTS, strict=True)]
    closest_complaints = max(similarity(a, b) for a in complaints for b in complaints if a != b)
    furthest_copies = min(similarity(a, b) for a in copies for b in copies if a != b)
    assert closest_complaints < 0.3 < 0.5 < furthest_copies


def test_near_identical_posts_about_three_members_are_a_campaign(
    session: Session, post: Post, config: DetectionSettings, alice: Tenancy, bob: Tenancy, charlie: Tenancy
) -> None:
    for day, (tenancy, variant) in enumerate(zip([alice, bob, charlie], VARIANTS, strict=False)):
        post(*named(tenancy), at=T0 + hours(day * 30), author=f"acct{day}", text=about(tenancy, variant))
        run_detection(session, config, now=T0 + hours(day * 30 + 1))
        assert len(cases_of(session, "campaign")) == (1 if day == 2 else 0)
    [case] = cases_of(session, "campaign")
    assert case.details["kind"] == "wording" and case.details["posts"] == 3
    assert {e.doctor_id for e in case.entities} - {None} == {t.doctors[0].id for t in (alice, bob, charlie)}
    assert len(case.entities) == 6  # each post names the doctor and the practice
    assert case.title.startswith("Campaign: 3 near-identical posts about 3 members (Dr Amira Hassan")


def test_a_campaigns_figures_count_its_members_as_its_title_does(
    session: Session, post: Post, config: DetectionSettings, alice: Tenancy, bob: Tenancy, charlie: Tenancy
) -> None:
    """Each post names a doctor and their practice: three members, not six, in the email and
    `vigil cases show` alike."""
    for day, tenancy in enumerate([alice, bob, charlie]):
        post(*named(tenancy), at=T0 + hours(day * 30), author=f"acct{day}", text=about(tenancy, TEMPLATE))
        run_detection(session, config, now=T0 + hours(day * 30 + 1))
    [case] = cases_of(session, "campaign")
    assert case.title.startswith("Campaign: 3 near-identical posts about 3 members")
    assert explain(case) == ["3 near-identical flagged posts by 3 accounts about 3 members."]


def test_merely_similar_complaints_about_many_members_are_not_a_campaign(
    session: Session, post: Post, config: DetectionSettings, alice: Tenancy, bob: Tenancy, charlie: Tenancy
) -> None:
    tenancies = [alice, bob, charlie, alice]
    for i, (tenancy, complaint) in enumerate(zip(tenancies, SIMILAR_COMPLAINTS, strict=True)):
        post(tenancy.doctors[0], at=T0 + hours(i), author=f"patient{i}", text=about(tenancy, complaint))
    run_detection(session, config, now=T0 + hours(5))
    assert cases_of(session, "campaign") == []


def test_near_identical_posts_about_one_member_are_not_a_campaign(
    session: Session, post: Post, config: DetectionSettings, alice: Tenancy
) -> None:
    for i, variant in enumerate(VARIANTS):
        post(alice.doctors[0], at=T0 + hours(i * 12), author=f"acct{i}", text=about(alice, variant))
    run_detection(session, config, now=T0 + hours(40))
    assert cases_of(session, "campaign") == []


def test_short_insults_alike_by_chance_are_never_compared(
    session: Session, post: Post, config: DetectionSettings, alice: Tenancy, bob: Tenancy, charlie: Tenancy
) -> None:
    for i, tenancy in enumerate([alice, bob, charlie]):
        post(
            tenancy.doctors[0], at=T0 + hours(i), author=f"p{i}", text=about(tenancy, "Dr {name} is useless")
        )
    run_detection(session, config, now=T0 + hours(4))
    assert cases_of(session, "campaign") == []


def one_author_about(post: Post, tenancies: list[Tenancy]) -> None:
    """The account ``crusader`` posts a complaint about each member, two days apart."""
    for i, (tenancy, complaint) in enumerate(zip(tenancies, SIMILAR_COMPLAINTS, strict=False)):
        post(
            tenancy.doctors[0],
            at=T0 + hours(i * 48),
            author="crusader",
            text=about(tenancy, complaint),
            labels=("abusive",),
        )


def test_one_author_about_three_members_is_a_campaign(
    session: Session, post: Post, config: DetectionSettings, alice: Tenancy, bob: Tenancy, charlie: Tenancy
) -> None:
    one_author_about(post, [alice, bob, charlie])
    run_detection(session, config, now=T0 + hours(97))
    [case] = cases_of(session, "campaign")
    assert case.details["kind"] == "author" and case.details["authors"] == 1
    assert "3 posts by one account about 3 members" in case.title


def test_a_case_counts_its_posts_and_authors_but_keeps_neither_their_text_nor_their_handles(
    session: Session, post: Post, config: DetectionSettings, alice: Tenancy, bob: Tenancy, charlie: Tenancy
) -> None:
    """Retention and erasure delete mentions, not cases: what a case copied from a post would outlive it."""
    one_author_about(post, [alice, bob, charlie])
    run_detection(session, config, now=T0 + hours(97))
    [case] = cases_of(session, "campaign")
    kept = [case.title, json.dumps(case.details)]
    kept += [f"{e.old_value} {e.new_value} {e.note}" for e in case.events]
    assert [text for text in kept if "crusader" in text or "appointment" in text] == []


def test_one_author_about_two_members_is_not_yet_a_campaign(
    session: Session, post: Post, config: DetectionSettings, alice: Tenancy, bob: Tenancy
) -> None:
    for i, tenancy in enumerate([alice, bob, alice, bob]):
        post(
            tenancy.doctors[0],
            at=T0 + hours(i),
            author="crusader",
            text=about(tenancy, SIMILAR_COMPLAINTS[i]),
            labels=("abusive",),
        )
    run_detection(session, config, now=T0 + hours(5))
    assert cases_of(session, "campaign") == []


def test_posts_further_apart_than_the_campaign_window_are_not_grouped(
    session: Session, post: Post, config: DetectionSettings, alice: Tenancy, bob: Tenancy, charlie: Tenancy
) -> None:
    days = config.campaign_window.days
    for i, tenancy in enumerate([alice, bob, charlie]):
        at = T0 + hours(i * 24 * days / 2 + i)
        post(*named(tenancy), at=at, author=f"acct{i}", text=about(tenancy, VARIANTS[0]))
        run_detection(session, config, now=at + hours(1))
    assert cases_of(session, "campaign") == []


def test_a_further_copy_about_a_new_member_joins_the_open_campaign(
    session: Session, post: Post, config: DetectionSettings, alice: Tenancy, bob: Tenancy, charlie: Tenancy
) -> None:
    for i, tenancy in enumerate([alice, bob, charlie]):
        post(*named(tenancy), at=T0 + hours(i), author=f"acct{i}", text=about(tenancy, VARIANTS[i]))
    run_detection(session, config, now=T0 + hours(3))
    dana = make_practice_tenant(
        session, "D40004", "Dana Medical Centre", "Derby", [("4000004", "Dana Kowalski")]
    )
    post(*named(dana), at=T0 + hours(30), author="acct9", text=about(dana, VARIANTS[3]))
    report = run_detection(session, config, now=T0 + hours(31))
    [case] = cases_of(session, "campaign")
    assert report.opened == [] and report.fed == {case.id}
    assert len(case.entities) == 8 and len(case.mentions) == 4
    assert [e.action for e in case.events] == ["opened", "entity", "entity", "evidence"]


def test_one_author_about_three_doctors_of_one_practice_is_that_practices_matter(
    session: Session, post: Post, config: DetectionSettings
) -> None:
    surgery = make_practice_tenant(
        session,
        "E50005",
        "Elm Surgery",
        "Ely",
        [("5000001", "Ed One"), ("5000002", "Em Two"), ("5000003", "Eli Three")],
    )
    for i, doctor in enumerate(surgery.doctors):
        post(
            doctor,
            at=T0 + hours(i * 24),
            author="regular",
            text=f"Dr {doctor.full_name} {SIMILAR_COMPLAINTS[i]}",
        )
    run_detection(session, config, now=T0 + hours(50))
    assert cases_of(session, "campaign") == []


def test_one_reviewer_criticising_three_members_is_not_a_campaign(
    session: Session, post: Post, config: DetectionSettings, alice: Tenancy, bob: Tenancy, charlie: Tenancy
) -> None:
    """Critical reviews of several practices by one prolific local reviewer are ordinary."""
    for i, (tenancy, complaint) in enumerate(zip([alice, bob, charlie], SIMILAR_COMPLAINTS, strict=False)):
        post(tenancy.doctors[0], at=T0 + hours(i * 48), author="reviewer", text=about(tenancy, complaint))
    run_detection(session, config, now=T0 + hours(97))
    assert cases_of(session, "campaign") == []


def zero_width(text: str) -> str:
    """A zero-width space after every fourth character, as spam tools insert them."""
    return "\u200b".join(text[i : i + 4] for i in range(0, len(text), 4))


def test_copies_disguised_with_zero_width_spaces_are_still_a_campaign(
    session: Session, post: Post, config: DetectionSettings, alice: Tenancy, bob: Tenancy, charlie: Tenancy
) -> None:
    for i, tenancy in enumerate([alice, bob, charlie]):
        names, allegation = about(tenancy, TEMPLATE).split(
            " misdiagnosed"
        )  # the matcher still finds the names
        disguised = names + (
            " misdiagnosed" + allegation if i == 0 else zero_width(" misdiagnosed" + allegation)
        )
        post(*named(tenancy), at=T0 + hours(i), author=f"acct{i}", text=disguised)
    run_detection(session, config, now=T0 + hours(4))
    [case] = cases_of(session, "campaign")
    assert case.details["kind"] == "wording" and case.details["posts"] == 3


def test_posts_by_deleted_reddit_accounts_about_three_members_are_not_one_accounts_campaign(
    session: Session, post: Post, config: DetectionSettings, alice: Tenancy, bob: Tenancy, charlie: Tenancy
) -> None:
    """Three people, their accounts deleted since: Reddit names each of them "[deleted]"."""
    for i, (tenancy, complaint) in enumerate(zip([alice, bob, charlie], SIMILAR_COMPLAINTS, strict=False)):
        post(
            tenancy.doctors[0],
            at=T0 + hours(i * 48),
            source="reddit",
            author="u/[deleted]",
            text=about(tenancy, complaint),
            labels=("abusive",),
        )
    run_detection(session, config, now=T0 + hours(97))
    assert cases_of(session, "campaign") == []


def test_an_account_abusing_a_member_of_an_open_campaign_and_others_is_a_campaign_of_its_own(
    session: Session, post: Post, config: DetectionSettings
) -> None:
    d, e, f, g, h = practices(session, 5)
    for i, tenancy in enumerate([d, e, f]):
        post(*named(tenancy), at=T0 + hours(i), author=f"acct{i}", text=about(tenancy, VARIANTS[i]))
    run_detection(session, config, now=T0 + hours(4))
    later = T0 + timedelta(days=7)
    for i, (tenancy, complaint) in enumerate(zip([f, g, h], SIMILAR_COMPLAINTS, strict=False)):
        post(
            tenancy.doctors[0],
            at=later + hours(i),
            author="@troll",
            text=about(tenancy, complaint),
            labels=("abusive",),
        )
    notified: list[tuple[int, str]] = []
    report = run_detection(
        session, config, now=later + hours(4), notify=lambda s, c, what: notified.append((c.id, what))
    )
    copies, troll = cases_of(session, "campaign")
    assert report.opened == [troll.id] and notified == [(troll.id, "opened")]  # its own email
    assert troll.details["kind"] == "author" and len(troll.mentions) == 3 and len(copies.mentions) == 3
    slots = session.execute(
        select(CaseEntity.case_id, CaseEntity.open_slot).where(CaseEntity.doctor_id == f.doctors[0].id)
    )
    assert sorted(slots) == [(copies.id, f"campaign:doctor:{f.doctors[0].id}"), (troll.id, None)]


def test_a_doctor_named_with_their_practice_is_one_member_for_a_campaigns_severity(
    session: Session, post: Post, config: DetectionSettings
) -> None:
    """High takes twice ``campaign_min_entities`` (3) members: six doctors, not three named with
    their practices."""
    tenancies = practices(session, 6)
    for i, tenancy in enumerate(tenancies):
        post(*named(tenancy), at=T0 + hours(i), author=f"acct{i}", text=about(tenancy, VARIANTS[0]))
        run_detection(session, config, now=T0 + hours(i + 0.5))
        if i >= 2:
            [case] = cases_of(session, "campaign")
            assert case.severity is (Severity.HIGH if i == 5 else Severity.MEDIUM), (i, case.severity)
