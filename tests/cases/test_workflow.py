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
from cases.detect import DetectionSettings, detect_pass
from cases.workflow import CaseError, Finding, open_or_feed, update_case
from tests.cases.conftest import T0, Post, cases_of, hours
from tests.conftest import Tenancy
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
