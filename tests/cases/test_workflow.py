"""The triage workflow: valid transitions only, every change in the history, one open case per slot."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import cases.detect
import cases.workflow
from cases.detect import DetectionSettings, detect_pass
from cases.workflow import CaseError, Finding, get_case, open_or_feed, update_case
from tests.cases.conftest import T0, Post, cases_of, hours, run_detection
from tests.conftest import Tenancy, make_practice_tenant
from vigil.db import transaction
from vigil.models import Case, CaseEntity, CaseReason, CaseStatus, Severity


@pytest.fixture
def case(session: Session, alice: Tenancy, post: Post) -> Case:
    mention = post(alice.doctors[0], at=T0, labels=("threat",))
    finding = Finding(
        CaseReason.THREAT, [("doctor", alice.doctors[0].id)], [mention.id], Severity.CRITICAL, "t"
    )
    made, opened = open_or_feed(session, finding, T0)
    session.commit()
    assert opened
    return made


def test_a_case_goes_from_new_to_triaged_to_escalated_to_closed(session: Session, case: Case) -> None:
    for status in (CaseStatus.TRIAGED, CaseStatus.ESCALATED, CaseStatus.CLOSED):
        update_case(session, case, by="Priya (case team)", status=status)
    assert case.status is CaseStatus.CLOSED and case.closed_at is not None
    assert [(e.action, e.old_value, e.new_value) for e in case.events[1:]] == [
        ("status", "new", "triaged"),
        ("status", "triaged", "escalated"),
        ("status", "escalated", "closed"),
    ]
    assert {e.actor for e in case.events[1:]} == {"Priya (case team)"}


@pytest.mark.parametrize(
    ("path", "target", "message"),
    [
        ((), CaseStatus.CLOSED, "case 1 is new: it can move to triaged, not to closed"),
        ((), CaseStatus.ESCALATED, "case 1 is new: it can move to triaged, not to escalated"),
        (
            (CaseStatus.TRIAGED,),
            CaseStatus.NEW,
            "case 1 is triaged: it can move to escalated, closed, not to new",
        ),
        (
            (CaseStatus.TRIAGED, CaseStatus.CLOSED),
            CaseStatus.TRIAGED,
            "case 1 is closed: it can move to nothing (it is closed), not to triaged",
        ),
    ],
)
def test_an_invalid_transition_is_refused_and_changes_nothing(
    session: Session, case: Case, path: tuple[CaseStatus, ...], target: CaseStatus, message: str
) -> None:
    for status in path:
        update_case(session, case, by="p", status=status)
    before = (case.status, len(case.events), case.assignee)
    with pytest.raises(CaseError) as error:
        update_case(session, case, by="p", status=target, assignee="Sam", note="should not be kept")
    assert str(error.value) == message
    assert (case.status, len(case.events), case.assignee) == before


def test_assignee_and_notes_are_recorded_with_who_and_when(session: Session, case: Case) -> None:
    changes = update_case(
        session,
        case,
        by="Priya",
        assignee="Sam Jones",
        note="Called the practice manager.",
        now=T0 + hours(2),
    )
    assert changes == ["assignee - → Sam Jones", "note added"]
    assignee, note = case.events[1:]
    assert (assignee.action, assignee.new_value, assignee.actor, assignee.at) == (
        "assignee",
        "Sam Jones",
        "Priya",
        T0 + hours(2),
    )
    assert (note.action, note.note) == ("note", "Called the practice manager.")
    assert case.updated_at == T0 + hours(2)


def test_a_change_needs_someone_to_make_it(session: Session, case: Case) -> None:
    with pytest.raises(CaseError, match="say who is making the change"):
        update_case(session, case, by=" ", note="anonymous")


def test_a_closed_case_takes_a_note_but_no_new_assignee(session: Session, case: Case) -> None:
    update_case(session, case, by="Priya", status=CaseStatus.TRIAGED, assignee="Sam")
    update_case(session, case, by="Priya", status=CaseStatus.CLOSED)
    with pytest.raises(CaseError, match="case 1 is closed: it can take a note, not a new assignee"):
        update_case(session, case, by="Priya", assignee="Alex", note="handed over")
    assert case.assignee == "Sam" and case.events[-1].action == "status"
    assert update_case(session, case, by="Priya", note="The member called back.") == ["note added"]


@pytest.mark.parametrize("by", ["vigil", " Vigil "])
def test_no_one_may_change_a_case_as_vigil_detections_own_name(session: Session, case: Case, by: str) -> None:
    with pytest.raises(CaseError, match="'vigil' is detection's own name in the history: give yours"):
        update_case(session, case, by=by, note="evidence reviewed")
    assert [event.actor for event in case.events] == ["vigil"]  # only detection's "opened"


@pytest.mark.parametrize(
    ("by", "assignee", "refused"), [("P" * 201, None, "--by"), ("Priya", "S" * 201, "--assignee")]
)
def test_a_name_longer_than_the_history_keeps_is_refused_before_anything_changes(
    session: Session, case: Case, by: str, assignee: str | None, refused: str
) -> None:
    """PostgreSQL refused it mid-change, with a database error and not a word about the option."""
    with pytest.raises(CaseError, match=f"{refused} is 201 characters long; give at most 200"):
        update_case(session, case, by=by, assignee=assignee, note="handed over")
    session.commit()
    assert [event.action for event in case.events] == ["opened"] and case.assignee == ""


def test_the_database_allows_one_open_case_per_entity_and_reason(session: Session, case: Case) -> None:
    slot = case.entities[0].open_slot
    assert slot == f"threat:doctor:{case.entities[0].doctor_id}"
    session.add(
        Case(
            reason=CaseReason.THREAT,
            severity=Severity.HIGH,
            title="dup",
            entities=[CaseEntity(doctor_id=case.entities[0].doctor_id, open_slot=slot)],
        )
    )
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()


def test_closing_frees_the_slot_for_a_new_case(session: Session, case: Case, alice: Tenancy) -> None:
    update_case(session, case, by="p", status=CaseStatus.TRIAGED)
    update_case(session, case, by="p", status=CaseStatus.CLOSED)
    assert case.entities[0].open_slot is None
    finding = Finding(CaseReason.THREAT, [("doctor", alice.doctors[0].id)], [], Severity.CRITICAL, "again")
    second, opened = open_or_feed(session, finding, T0 + timedelta(days=1))
    assert opened and second.id != case.id


def test_a_pass_that_loses_the_race_feeds_the_winning_case(
    session: Session, case: Case, alice: Tenancy, post: Post, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As when another pass committed the case between this pass's look-up and its insert."""
    later = post(alice.doctors[0], at=T0 + hours(1), labels=("threat",))
    real = cases.workflow.open_cases_for
    looked: list[bool] = []

    def stale_then_real(*args: object) -> list[Case]:
        looked.append(True)
        return [] if len(looked) == 1 else real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(cases.workflow, "open_cases_for", stale_then_real)
    finding = Finding(
        CaseReason.THREAT, [("doctor", alice.doctors[0].id)], [later.id], Severity.CRITICAL, "t"
    )
    fed, opened = open_or_feed(session, finding, T0 + hours(1))
    session.commit()
    assert not opened and fed.id == case.id and len(looked) == 2
    assert len(cases_of(session)) == 1 and len(cases_of(session)[0].mentions) == 2


def test_two_concurrent_passes_open_one_case(
    session: Session,
    post: Post,
    config: DetectionSettings,
    alice: Tenancy,
    backend: str,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each pass claims half of a pile-on; both see all of it, and both try to open the case.

    On PostgreSQL both passes reach the insert before either commits (a barrier holds them), so
    the unique open slot decides. On SQLite transactions take the write lock at BEGIN, so the
    passes run one after the other and the second finds the first one's case.
    """
    config = replace(config, batch_size=3, spike_min_authors=10_000)
    for i in range(6):
        post(alice.doctors[0], at=T0 + hours(i / 6), author=f"a{i}")
    barrier = threading.Barrier(2, timeout=5)
    real_open = cases.detect.open_or_feed

    def open_together(*args: object) -> tuple[Case, bool]:
        if backend == "postgresql":
            barrier.wait()
        return real_open(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(cases.detect, "open_or_feed", open_together)
    results: list[object] = []

    def run() -> None:
        try:
            results.append(detect_pass(engine, config, T0 + hours(2)))
        except Exception as error:  # reported below, not lost in the thread
            results.append(error)

    session.commit()
    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert all(not isinstance(r, Exception) for r in results), results
    assert sorted(r.scanned for r in results) == [3, 3]  # type: ignore[attr-defined]
    assert sum(len(r.opened) for r in results) == 1  # type: ignore[attr-defined]
    [pile_on] = cases_of(session)
    assert pile_on.reason == "pile_on" and len(pile_on.mentions) == 6
    assert session.scalar(select(CaseEntity.open_slot)) == f"pile_on:doctor:{alice.doctors[0].id}"


# -- a handler closing a case while a detection pass feeds it (PostgreSQL) ----------------------


def handler_closes_after_the_look_up(
    engine: Engine, case_id: int, monkeypatch: pytest.MonkeyPatch
) -> list[int]:
    """Make a handler's ``vigil cases update ID --status closed`` commit, in its own transaction,
    just after the pass has looked the case up as open and before the pass locks it."""
    real = cases.workflow.still_open
    closed: list[int] = []

    def close_first(session: Session, case: Case) -> bool:
        if case.id == case_id and not closed:
            with transaction(engine) as handler:
                update_case(
                    handler, get_case(handler, case_id, for_update=True), by="Priya", status=CaseStatus.CLOSED
                )
            closed.append(case_id)
        return real(session, case)

    monkeypatch.setattr(cases.workflow, "still_open", close_first)
    monkeypatch.setattr(cases.detect, "still_open", close_first)
    return closed


def skip_on_sqlite(backend: str) -> None:
    if backend != "postgresql":
        pytest.skip(
            "on SQLite a handler's change waits for the whole pass: both take the write lock at BEGIN"
        )


def test_a_threat_posted_as_a_handler_closes_the_threat_case_opens_a_new_case(
    session: Session,
    post: Post,
    config: DetectionSettings,
    alice: Tenancy,
    backend: str,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    skip_on_sqlite(backend)
    post(alice.doctors[0], at=T0, labels=("threat",))
    run_detection(session, config, T0 + hours(0.1))
    [first] = cases_of(session)
    update_case(session, first, by="Priya", status=CaseStatus.TRIAGED)
    post(alice.doctors[0], at=T0 + hours(1), author="another", labels=("threat",))
    closed = handler_closes_after_the_look_up(engine, first.id, monkeypatch)
    report = run_detection(session, config, T0 + hours(1.1))
    first, second = cases_of(session)
    assert closed == [first.id] and first.status is CaseStatus.CLOSED and len(first.mentions) == 1
    assert report.opened == [second.id] and second.reason == "threat" and len(second.mentions) == 1


def test_a_campaign_closed_while_a_pass_feeds_it_keeps_no_open_slot(
    session: Session,
    post: Post,
    config: DetectionSettings,
    backend: str,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Otherwise the closed case would keep the new member's slot for good, and take in every later
    campaign about that member, with no case and no email."""
    skip_on_sqlite(backend)
    text = "Dr {} misdiagnosed my son and then covered it up. Do NOT trust this doctor!"
    doctors = [
        make_practice_tenant(
            session, f"P{n:05d}", f"Practice {n}", "Leeds", [(f"{9000000 + n}", f"Doc Number{n}")]
        ).doctors[0]
        for n in range(4)
    ]
    for i, doctor in enumerate(doctors[:3]):
        post(doctor, at=T0 + hours(i), author=f"acct{i}", text=text.format(doctor.full_name))
    run_detection(session, config, T0 + hours(4))
    [campaign] = cases_of(session, "campaign")
    update_case(session, campaign, by="Priya", status=CaseStatus.TRIAGED)
    copy = post(doctors[3], at=T0 + hours(30), author="acct9", text=text.format(doctors[3].full_name))
    closed = handler_closes_after_the_look_up(engine, campaign.id, monkeypatch)
    run_detection(session, config, T0 + hours(31))
    campaign, *others = cases_of(session, "campaign")
    assert closed == [campaign.id] and campaign.status is CaseStatus.CLOSED
    assert [row.open_slot for row in campaign.entities] == [None, None, None]
    assert len(campaign.mentions) == 3  # the copy is not hidden in the closed case
    assert [copy.id in {m.mention_id for m in case.mentions} for case in others] == [True]
