from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.conftest import Tenancy
from vigil.models import Mention, MentionEntity, Recipient, Scope
from vigil.scope import recipients_for_entity, visible_to


def mention_about(session: Session, tenancy: Tenancy, text: str, practice: bool = False) -> Mention:
    assert tenancy.practice is not None
    entity = (
        MentionEntity(practice=tenancy.practice, matched_text=tenancy.practice.name)
        if practice
        else MentionEntity(doctor=tenancy.doctors[0], matched_text=tenancy.doctors[0].full_name)
    )
    mention = Mention(
        source="x",
        external_id=text,
        text=text,
        created_at=datetime(2026, 11, 2, tzinfo=UTC),
        entities=[entity],
    )
    session.add(mention)
    session.commit()
    return mention


def visible_texts(session: Session, recipient: Recipient) -> set[str]:
    return set(session.scalars(select(Mention.text).where(visible_to(recipient))))


def test_a_practice_sees_only_mentions_of_itself_and_its_doctors(
    session: Session, alice: Tenancy, bob: Tenancy, charlie: Tenancy, org: Tenancy
) -> None:
    mention_about(session, alice, "about alice's doctor")
    mention_about(session, alice, "about alice's practice", practice=True)
    mention_about(session, bob, "about bob")
    mention_about(session, charlie, "about charlie")
    assert alice.recipient and bob.recipient and org.recipient
    assert visible_texts(session, alice.recipient) == {
        "about alice's doctor",
        "about alice's practice",
    }
    assert visible_texts(session, bob.recipient) == {"about bob"}
    assert visible_texts(session, org.recipient) == {
        "about alice's doctor",
        "about alice's practice",
        "about bob",
        "about charlie",
    }


def test_a_doctor_sees_only_mentions_of_themself(session: Session, alice: Tenancy) -> None:
    doctor_recipient = Recipient(
        email="amira@example.org", scope=Scope.DOCTOR, tenant=alice.tenant, doctor=alice.doctors[0]
    )
    session.add(doctor_recipient)
    mention_about(session, alice, "about the doctor")
    mention_about(session, alice, "about the practice", practice=True)
    assert visible_texts(session, doctor_recipient) == {"about the doctor"}


def test_an_entity_is_the_concern_of_its_doctor_its_practice_and_optionally_the_organisation(
    session: Session, alice: Tenancy, bob: Tenancy, org: Tenancy
) -> None:
    doctor = alice.doctors[0]
    own = recipients_for_entity(session, doctor_id=doctor.id)
    assert [r.email for r in own] == ["manager@a10001.example"]
    with_org = recipients_for_entity(session, doctor_id=doctor.id, include_org=True)
    assert {r.email for r in with_org} == {"manager@a10001.example", "cases@mdo.example"}
