"""Detection rules at their edges: zero history, minimum counts, window boundaries, distinct authors."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cases.detect import DetectionSettings
from cases.workflow import update_case
from collector.matching import EntityMatch
from collector.post import Post as CollectedPost
from collector.store import store_matched
from collector.urls import canonical_url
from tests.cases.conftest import T0, Entity, Post, cases_of, hours, run_detection
from tests.conftest import Tenancy
from vigil.models import CaseEvent, CaseStatus, Mention, MentionEntity, Severity


def busy_history(post: Post, entity: Entity, per_day: int, days: int = 28) -> None:
    """An entity that usually gets ``per_day`` flagged posts a day, from different people."""
    for day in range(1, days + 1):
        for i in range(per_day):
            post(entity, at=T0 - timedelta(days=day, hours=i), author=f"regular{day}-{i}")


# -- spikes -------------------------------------------------------------------------------------


def test_three_authors_in_a_day_about_a_quiet_doctor_is_a_spike(
    session: Session, post: Post, config: DetectionSettings, alice: Tenancy
) -> None:
    doctor = alice.doctors[0]
    for i in range(3):
        post(doctor, at=T0 + hours(i * 5), author=f"a{i}")
    report = run_detection(session, config, now=T0 + hours(11))
    [case] = cases_of(session, "spike")
    assert report.opened == [case.id]
    assert case.details["authors"] == 3 and case.details["expected"] < 0.01
    assert case.details["tail_probability"] <= config.spike_max_p
    assert "Amira Hassan" in case.title and case.severity is Severity.MEDIUM
    assert len(case.mentions) == 3


@pytest.mark.parametrize(
    ("source", "author"),
    [("reddit", "u/[deleted]"), ("careopinion", "patient")],
    ids=["deleted-reddit-account", "care-opinion-role"],
)
def test_posts_whose_author_names_no_account_count_as_different_people(
    session: Session, post: Post, config: DetectionSettings, alice: Tenancy, source: str, author: str
) -> None:
    for i in range(3):
        post(alice.doctors[0], at=T0 + hours(i * 5), source=source, author=author)
    run_detection(session, config, now=T0 + hours(11))
    [case] = cases_of(session, "spike")
    assert case.details["authors"] == 3


def test_two_authors_stay_below_the_minimum_even_with_no_history(
    session: Session, post: Post, config: DetectionSettings, alice: Tenancy
) -> None:
    post(alice.doctors[0], at=T0, author="a")
    post(alice.doctors[0], at=T0 + hours(1), author="b")
    run_detection(session, config, now=T0 + hours(2))
    assert cases_of(session) == []


def test_one_account_posting_many_times_counts_once(
    session: Session, post: Post, config: DetectionSettings, alice: Tenancy
) -> None:
    for i in range(8):
        post(alice.doctors[0], at=T0 + hours(i), author="angry")
    run_detection(session, config, now=T0 + hours(9))
    assert cases_of(session) == []


def test_authors_just_more_than_a_window_apart_are_not_a_spike(
    session: Session, post: Post, config: DetectionSettings, alice: Tenancy
) -> None:
    doctor = alice.doctors[0]
    post(doctor, at=T0, author="a")
    post(doctor, at=T0 + hours(12), author="b")
    post(doctor, at=T0 + hours(24) + timedelta(seconds=1), author="c")  # "a" is a second too early
    run_detection(session, config, now=T0 + hours(25))
    assert cases_of(session, "spike") == []
    post(doctor, at=T0 + hours(24), author="d")  # within 24 hours of "a", to the second
    run_detection(session, config, now=T0 + hours(26))
    assert len(cases_of(session, "spike")) == 1


def test_a_busy_practice_needs_far_more_than_its_usual_rate(
    session: Session, post: Post, config: DetectionSettings, alice: Tenancy
) -> None:
    practice = alice.practice
    assert practice is not None
    busy_history(post, practice, per_day=2)
    for i in range(4):  # two hours apart, so that no six hours hold a pile-on
        post(practice, at=T0 + hours(2 * i), author=f"today{i}")
    run_detection(session, config, now=T0 + hours(7))
    assert cases_of(session) == []  # four in a day is ordinary for this practice
    for i in range(4, 12):
        post(practice, at=T0 + hours(2 * i), author=f"today{i}")
    run_detection(session, config, now=T0 + hours(23))
    [case] = cases_of(session, "spike")
    assert 8 <= case.details["authors"] < 12  # opened at the first post that made it surprising
    assert 1.5 < case.details["expected"] < 2.5
    assert len(case.mentions) == 12


# -- pile-ons -----------------------------------------------------------------------------------


def quiet_spikes(config: DetectionSettings) -> DetectionSettings:
    """Spikes switched off, so that a test sees the pile-on rule alone."""
    return replace(config, spike_min_authors=10_000)


def test_five_authors_within_six_hours_is_a_pile_on(
    session: Session, post: Post, config: DetectionSettings, alice: Tenancy
) -> None:
    config = quiet_spikes(config)
    for i in range(5):
        post(alice.doctors[0], at=T0 + hours(i * 1.5), author=f"a{i}")  # the last is 6 h after the first
    run_detection(session, config, now=T0 + hours(7))
    [case] = cases_of(session, "pile_on")
    assert case.details["authors"] == 5 and case.details["hours"] == 6
    assert "Pile-on: 5 accounts within 6 h" in case.title


def test_five_authors_spread_over_more_than_six_hours_is_not_a_pile_on(
    session: Session, post: Post, config: DetectionSettings, alice: Tenancy
) -> None:
    config = quiet_spikes(config)
    for i in range(5):
        post(alice.doctors[0], at=T0 + hours(i * 1.5) + timedelta(seconds=i), author=f"a{i}")
    run_detection(session, config, now=T0 + hours(7))
    assert cases_of(session) == []


def test_four_authors_are_not_a_pile_on_however_often_they_post(
    session: Session, post: Post, config: DetectionSettings, alice: Tenancy
) -> None:
    config = quiet_spikes(config)
    for i in range(12):
        post(alice.doctors[0], at=T0 + hours(i / 4), author=f"a{i % 4}")
    run_detection(session, config, now=T0 + hours(4))
    assert cases_of(session) == []


def test_a_mention_collected_late_completes_the_span_it_was_posted_in(
    session: Session, post: Post, config: DetectionSettings, alice: Tenancy
) -> None:
    config = quiet_spikes(config)
    for i in range(4):
        post(alice.doctors[0], at=T0 + hours(i), author=f"a{i}")
    run_detection(session, config, now=T0 + hours(4))
    assert cases_of(session) == []
    post(alice.doctors[0], at=T0 + hours(0.5), author="late")  # posted early, collected ten hours later
    run_detection(session, config, now=T0 + hours(10))
    assert len(cases_of(session, "pile_on")) == 1


# -- threats ------------------------------------------------------------------------------------


def test_a_single_threat_opens_a_critical_case_at_once(
    session: Session, post: Post, config: DetectionSettings, alice: Tenancy
) -> None:
    post(alice.doctors[0], at=T0, author="a", labels=("threat", "abusive"))
    report = run_detection(session, config, now=T0 + hours(0.2))
    [case] = cases_of(session)
    assert report.opened == [case.id]
    assert case.reason == "threat" and case.severity is Severity.CRITICAL
    assert case.title == "Possible threat against Dr Amira Hassan (GMC 1000001, Alice Road Surgery)"


def test_a_threat_naming_a_doctor_and_their_practice_is_one_case(
    session: Session, post: Post, config: DetectionSettings, alice: Tenancy
) -> None:
    assert alice.practice is not None
    post(alice.doctors[0], alice.practice, at=T0, labels=("threat",))
    run_detection(session, config, now=T0 + hours(1))
    [case] = cases_of(session)
    assert {(e.doctor_id, e.practice_id) for e in case.entities} == {
        (alice.doctors[0].id, None),
        (None, alice.practice.id),
    }


def threat_naming_both(session: Session, post: Post, config: DetectionSettings, alice: Tenancy) -> Mention:
    """A threat naming Dr Hassan and Dr Osei, found at once and scanned, before Dr Osei is registered."""
    mention = post(alice.doctors[0], at=T0, labels=("threat",), text="Dr Hassan and Dr Osei: watch out")
    mention.canonical_url = canonical_url(mention.url)  # as the collector stores it
    run_detection(session, config, now=T0 + hours(0.2))
    return mention


def seen_again_naming_both(
    session: Session, mention: Mention, alice: Tenancy, bob: Tenancy, at: datetime = T0 + hours(0.3)
) -> None:
    """The collector meets the post again once Dr Osei is registered (``at``, on the tests' clock):
    it keeps its labels and is scanned again."""
    again = CollectedPost("x", mention.external_id, mention.url, mention.author, T0, mention.text)
    matches = [EntityMatch(t.doctors[0].id, None, t.doctors[0].full_name, "name") for t in (alice, bob)]
    assert store_matched(session, [(again, matches)]).linked == 1
    session.execute(
        update(MentionEntity)
        .where(MentionEntity.mention_id == mention.id, MentionEntity.doctor_id == bob.doctors[0].id)
        .values(linked_at=at)
    )
    session.commit()


def test_a_threat_case_takes_in_a_doctor_its_post_is_found_to_name_later(
    session: Session, post: Post, config: DetectionSettings, alice: Tenancy, bob: Tenancy
) -> None:
    mention = threat_naming_both(session, post, config, alice)
    seen_again_naming_both(session, mention, alice, bob)
    run_detection(session, config, now=T0 + hours(0.5))
    [case] = cases_of(session, "threat")  # one post, one case, as for a post naming both at once
    assert sorted(e.doctor_id for e in case.entities) == [alice.doctors[0].id, bob.doctors[0].id]


def test_a_closed_threat_case_stays_closed_when_its_post_is_found_to_name_someone_else(
    session: Session, post: Post, config: DetectionSettings, alice: Tenancy, bob: Tenancy
) -> None:
    mention = threat_naming_both(session, post, config, alice)
    [closed] = cases_of(session, "threat")
    update_case(session, closed, by="case team", status=CaseStatus.TRIAGED)
    update_case(session, closed, by="case team", status=CaseStatus.CLOSED)
    seen_again_naming_both(session, mention, alice, bob)
    run_detection(session, config, now=T0 + hours(0.5))
    [_, opened] = cases_of(session, "threat")
    assert [(e.doctor_id, e.practice_id) for e in opened.entities] == [(bob.doctors[0].id, None)]
    assert opened.title == "Possible threat against Dr Benedict Osei (GMC 2000002, Bob Lane Practice)"


def test_posts_older_than_the_maximum_age_open_nothing(
    session: Session, post: Post, config: DetectionSettings, alice: Tenancy
) -> None:
    post(alice.doctors[0], at=T0 - timedelta(days=30), found_at=T0, labels=("threat",))
    for i in range(6):  # a pile-on eight days ago, first collected now (a backfill)
        post(alice.doctors[0], at=T0 - timedelta(days=8, minutes=-i), found_at=T0, author=f"a{i}")
    report = run_detection(session, config, now=T0)
    assert report.scanned == 7 and cases_of(session) == []


def test_a_threat_found_days_late_still_opens_a_case(
    session: Session, post: Post, config: DetectionSettings, alice: Tenancy
) -> None:
    """As it is still alerted at once: a threat found late (a slow feed, an outage) may be live."""
    post(alice.doctors[0], at=T0 - timedelta(days=10), found_at=T0, labels=("threat",))
    run_detection(session, config, now=T0 + hours(0.1))
    [case] = cases_of(session, "threat")
    assert case.details["first_at"] == (T0 - timedelta(days=10)).isoformat()


def test_a_threat_found_in_time_opens_a_case_however_late_it_is_scanned(
    session: Session, post: Post, config: DetectionSettings, alice: Tenancy
) -> None:
    """Detection (or the classifier) was down for three weeks: nobody has heard of the threat."""
    post(alice.doctors[0], at=T0, found_at=T0 + hours(1), labels=("threat",))
    run_detection(session, config, now=T0 + timedelta(days=21))
    assert len(cases_of(session, "threat")) == 1


def test_an_old_threat_found_to_name_a_doctor_registered_since_opens_no_case(
    session: Session, post: Post, config: DetectionSettings, alice: Tenancy, bob: Tenancy
) -> None:
    """Old news about them, like a backfill: the post names Dr Osei, registered a month on."""
    mention = threat_naming_both(session, post, config, alice)
    seen_again_naming_both(session, mention, alice, bob, at=T0 + timedelta(days=30))
    run_detection(session, config, now=T0 + timedelta(days=30, hours=1))
    assert len(cases_of(session, "threat")) == 1


def test_unflagged_and_unclassified_mentions_are_handled_correctly(
    session: Session, post: Post, config: DetectionSettings, alice: Tenancy
) -> None:
    post(alice.doctors[0], at=T0, labels=("praise",))
    session.add(Mention(source="x", external_id="raw", text="not classified yet", created_at=T0))
    session.commit()
    report = run_detection(session, config, now=T0 + hours(1))
    assert (report.scanned, report.flagged) == (1, 0)
    assert session.scalar(select(Mention.detected_at).where(Mention.external_id == "raw")) is None


# -- open cases gather evidence -----------------------------------------------------------------


def test_new_evidence_attaches_to_the_open_case_instead_of_opening_another(
    session: Session, post: Post, config: DetectionSettings, alice: Tenancy
) -> None:
    doctor = alice.doctors[0]
    post(doctor, at=T0, labels=("threat",))
    run_detection(session, config, now=T0 + hours(1))
    post(doctor, at=T0 + hours(2), author="b", labels=("threat",))
    post(doctor, at=T0 + hours(2), labels=("abusive",))  # two authors in all: no spike
    report = run_detection(session, config, now=T0 + hours(3))
    [case] = cases_of(session, "threat")
    assert report.opened == [] and report.fed == {case.id}
    assert len(case.mentions) == 3
    evidence = session.scalars(select(CaseEvent).where(CaseEvent.action == "evidence")).one()
    assert evidence.new_value == "+2 mention(s), 3 in all" and evidence.actor == "vigil"


def test_a_growing_pile_on_rises_in_severity(
    session: Session, post: Post, config: DetectionSettings, alice: Tenancy
) -> None:
    config = quiet_spikes(config)
    for i in range(5):
        post(alice.doctors[0], at=T0 + hours(i / 5), author=f"a{i}")
    run_detection(session, config, now=T0 + hours(1))
    for i in range(5, 10):
        post(alice.doctors[0], at=T0 + hours(1 + i / 10), author=f"a{i}")
    notified: list[tuple[int, str]] = []
    run_detection(session, config, now=T0 + hours(2), notify=lambda s, c, what: notified.append((c.id, what)))
    [case] = cases_of(session, "pile_on")
    assert case.severity is Severity.HIGH
    assert notified == [(case.id, "severity")]


def test_an_open_pile_on_does_not_rise_to_high_on_a_busy_practices_ordinary_traffic(
    session: Session, post: Post, config: DetectionSettings, alice: Tenancy
) -> None:
    """High is a pile-on of twice ``pile_on_authors`` accounts within its span, not everyone fed to
    the case in the days it stays open."""
    practice = alice.practice
    assert practice is not None
    busy_history(post, practice, per_day=2)
    for i in range(7):
        post(practice, at=T0 + hours(i / 3.5), author=f"mob{i}")
    run_detection(session, config, now=T0 + hours(2.5))
    [case] = cases_of(session)
    assert case.reason == "pile_on" and case.severity is Severity.MEDIUM
    notified: list[tuple[int, str]] = []
    for day in (1, 2):
        for i in range(2):  # its ordinary two critics a day, scanned hourly
            at = T0 + timedelta(days=day, hours=3 + 5 * i)
            post(practice, at=at, author=f"later{day}-{i}")
            run_detection(
                session, config, now=at + hours(1), notify=lambda s, c, what: notified.append((c.id, what))
            )
    [case] = cases_of(session)
    assert len(case.mentions) == 11 and case.severity is Severity.MEDIUM and notified == []


def test_a_closed_case_does_not_reopen_on_its_own_evidence(
    session: Session, post: Post, config: DetectionSettings, alice: Tenancy
) -> None:
    config = quiet_spikes(config)
    doctor = alice.doctors[0]
    for i in range(5):
        post(doctor, at=T0 + hours(i / 5), author=f"a{i}")
    run_detection(session, config, now=T0 + hours(1))
    [case] = cases_of(session, "pile_on")
    update_case(session, case, by="case team", status=CaseStatus.TRIAGED)
    update_case(session, case, by="case team", status=CaseStatus.CLOSED)
    session.commit()
    post(doctor, at=T0 + hours(1.5), author="a5")  # six authors in the span, but five were the closed case
    run_detection(session, config, now=T0 + hours(2))
    assert len(cases_of(session, "pile_on")) == 1
    for i in range(6, 10):
        post(doctor, at=T0 + hours(2 + i / 10), author=f"a{i}")
    run_detection(session, config, now=T0 + hours(3))
    first, second = cases_of(session, "pile_on")
    assert first.status is CaseStatus.CLOSED and second.status is CaseStatus.NEW
    assert len(second.mentions) == 5


def test_a_pile_on_that_is_also_a_spike_is_one_case(
    session: Session, post: Post, config: DetectionSettings, alice: Tenancy
) -> None:
    for i in range(3):
        post(alice.doctors[0], at=T0 + hours(i / 3), author=f"a{i}")
    run_detection(session, config, now=T0 + hours(1))
    for i in range(3, 6):
        post(alice.doctors[0], at=T0 + hours(1 + i / 10), author=f"a{i}")
    report = run_detection(session, config, now=T0 + hours(2))
    [case] = cases_of(session)
    assert case.reason == "spike" and report.opened == [] and len(case.mentions) == 6
    finding = session.scalars(select(CaseEvent).where(CaseEvent.action == "finding")).one()
    assert finding.new_value == "pile_on" and finding.note.startswith("Pile-on: 5 accounts within 6 h")
