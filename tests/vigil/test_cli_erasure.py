from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from collector.matching import EntityMatch
from collector.post import Post
from collector.store import StoreReport, store_matched
from collector.urls import canonical_url
from tests.alerts.conftest import NOW, Factory
from tests.conftest import Tenancy
from vigil.cli import app
from vigil.models import (
    Case,
    CaseEvent,
    CaseMention,
    CaseReason,
    CaseStatus,
    ErasedPost,
    Mention,
    OperatorEvent,
    Severity,
)

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("env")


def vigil(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["mentions", "forget", *args])
    return result.exit_code, result.output


@pytest.fixture
def make(session: Session) -> Factory:
    return Factory(session)


def stored(session: Session) -> list[int]:
    ids = list(session.scalars(select(Mention.id).order_by(Mention.id)))
    session.commit()  # on SQLite every transaction holds the write lock, which the next command needs
    return ids


def operator_events(session: Session) -> list[OperatorEvent]:
    events = list(session.scalars(select(OperatorEvent).where(OperatorEvent.kind == "erasure")))
    session.commit()
    return events


def test_forget_by_author_shows_what_would_go_without_its_text_and_deletes_only_with_yes(
    session: Session, make: Factory, alice: Tenancy
) -> None:
    gone = [
        make.mention(
            alice, author="@Troll_42", text="You will regret this", created_at=NOW - timedelta(days=40)
        ),
        make.mention(alice, author="@troll_42", text="I know where you park"),
    ]
    others = [
        make.mention(alice, author="@someone_else"),
        make.mention(alice, author="@troll_42", source="bluesky"),  # same handle, another network
    ]
    gone_ids = [m.id for m in gone]

    code, shown = vigil("--author", "troll_42", "--source", "x")
    assert code == 0
    assert "2 mention(s) match" in shown and "2026-10-01" in shown and "2026-11-10" in shown
    assert "regret" not in shown and "park" not in shown
    assert "Nothing is deleted without --yes" in shown
    assert len(stored(session)) == 4
    assert operator_events(session) == []

    code, shown = vigil("--author", "@TROLL_42", "--source", "x", "--yes")
    assert code == 0, shown
    assert "Erased 2 mention(s)" in shown and "retention.outbox_days" in shown
    assert stored(session) == [m.id for m in others]
    [event] = operator_events(session)
    assert f"{gone_ids[0]}, {gone_ids[1]}" in event.message and "by author" in event.message
    assert "troll" not in event.message.lower() and "regret" not in event.message

    assert vigil("--author", "troll_42", "--source", "x", "--yes")[1].startswith("No stored mention matches")


def article(
    session: Session, make: Factory, address: str, first: Tenancy, copy: Tenancy
) -> tuple[Mention, Mention]:
    """One article at ``address`` that reached two practices: the first entry, and the copy tied to it."""
    entry = make.mention(first, url=address)
    entry.canonical_url = canonical_url(address)
    tied = make.mention(copy, url=address)
    tied.copy_of = entry.id
    session.commit()
    return entry, tied


def in_a_case(session: Session, mention: Mention, status: CaseStatus = CaseStatus.NEW) -> Case:
    case = Case(reason=CaseReason.THREAT, status=status, severity=Severity.CRITICAL, title="Threat")
    case.mentions.append(CaseMention(mention_id=mention.id))
    session.add(case)
    session.commit()
    return case


def test_forget_by_url_finds_the_post_however_its_address_is_spelt_with_its_copies(
    session: Session, make: Factory, alice: Tenancy, bob: Tenancy
) -> None:
    article(session, make, "https://x.com/troll/status/123", alice, bob)
    kept = make.mention(alice)

    code, shown = vigil("--url", "https://mobile.twitter.com/Troll/status/123?utm_source=share", "--yes")

    assert code == 0, shown
    assert "Erased 2 mention(s)" in shown
    assert stored(session) == [kept.id]


def test_forget_by_id_erases_just_those_mentions(session: Session, make: Factory, alice: Tenancy) -> None:
    first, second, third = (make.mention(alice) for _ in range(3))

    assert vigil("--id", str(first.id), "--id", str(third.id))[0] == 0
    assert len(stored(session)) == 3
    code, shown = vigil("--id", str(first.id), "--id", str(third.id), "--yes", "--by", "Priya (DPO)")

    assert code == 0, shown
    assert stored(session) == [second.id]
    [event] = operator_events(session)
    assert "erased by Priya (DPO) on an erasure request by id" in event.message


def test_case_evidence_is_listed_and_kept_unless_the_operator_includes_it(
    session: Session, make: Factory, alice: Tenancy
) -> None:
    evidence, other = make.mention(alice, author="@troll"), make.mention(alice, author="@troll")
    case = in_a_case(session, evidence, CaseStatus.TRIAGED)
    evidence_id, other_id, case_id = evidence.id, other.id, case.id

    code, shown = vigil("--author", "troll", "--source", "x", "--yes")
    assert code == 0, shown
    assert f"mention {evidence_id}: case {case_id} (open, triaged)" in shown
    assert "Erased 1 mention(s)" in shown
    assert stored(session) == [evidence_id]
    assert f"Kept as case evidence: {evidence_id}" in operator_events(session)[0].message

    code, shown = vigil("--author", "troll", "--source", "x", "--include-case-evidence", "--yes")
    assert code == 0, shown
    assert stored(session) == []
    [note] = session.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id)).all()
    assert (note.action, note.note) == (
        "evidence_erased",
        f"1 post(s) erased on an erasure request: mention(s) {evidence_id}",
    )
    assert other_id not in stored(session)


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--author", "troll"],
        ["--source", "x"],
        ["--author", "", "--source", "x"],
        ["--url", "https://x.com/a/status/1", "--id", "1"],
        ["--url", "not an address"],
    ],
)
def test_a_request_that_names_posts_in_no_way_or_two_is_refused(args: list[str]) -> None:
    code, shown = vigil(*args, "--yes")
    assert code == 1
    assert shown.startswith("error:")


# -- erased posts stay erased ------------------------------------------------------------------


def seen_again(session: Session, mention: Mention, about: Tenancy, source: str = "") -> StoreReport:
    """A source shows the post again (a feed still lists it, a file is imported again)."""
    post = Post(source or mention.source, mention.external_id, mention.url, "@troll", NOW, "Dr Hassan again")
    doctor = about.doctors[0]
    report = store_matched(session, [(post, [EntityMatch(doctor.id, None, doctor.full_name, "name")])])
    session.commit()
    return report


def test_an_erased_post_is_not_stored_again_when_a_source_shows_it_again(
    session: Session, make: Factory, alice: Tenancy
) -> None:
    erased = make.mention(alice, author="@troll")
    erased.canonical_url = canonical_url(erased.url)
    session.commit()
    assert vigil("--author", "troll", "--source", "x", "--yes")[0] == 0

    report = seen_again(session, erased, alice)

    assert (report.stored, report.duplicates, report.erased) == (0, 0, 1)
    assert stored(session) == []
    digests = list(session.scalars(select(ErasedPost.key)))
    assert len(digests) == 2 and not any("troll" in key or "x.com" in key for key in digests)


def test_an_erased_address_is_not_stored_again_from_another_source(
    session: Session, make: Factory, alice: Tenancy
) -> None:
    erased = make.mention(alice, url="https://x.com/troll/status/123")
    erased.canonical_url = canonical_url(erased.url)
    session.commit()
    assert vigil("--url", erased.url, "--yes")[0] == 0

    # A Google Alert links to the same post: another source, another id, the same address.
    report = seen_again(session, replace_id(erased, "tag:google.com,2013:alert/1"), alice, source="rss")

    assert report.erased == 1 and stored(session) == []


def test_an_entry_erased_by_id_leaves_its_article_to_the_practice_whose_copy_stays(
    session: Session, make: Factory, alice: Tenancy, bob: Tenancy
) -> None:
    first, copy = article(session, make, "https://news.example/gp-row", alice, bob)
    assert vigil("--id", str(first.id), "--yes")[0] == 0

    assert seen_again(session, first, alice).erased == 1  # the erased entry itself
    report = seen_again(session, copy, bob)  # the copy that stays holds the address

    assert (report.erased, report.duplicates) == (0, 1)
    assert stored(session) == [copy.id]


def test_an_address_erased_by_url_is_blocked_even_where_a_copy_is_kept_as_evidence(
    session: Session, make: Factory, alice: Tenancy, bob: Tenancy, charlie: Tenancy
) -> None:
    """A new entry at the address, for a practice it had not reached, would have been stored."""
    address = "https://news.example/gp-row"
    evidence, _ = article(session, make, address, alice, bob)
    in_a_case(session, evidence)
    kept = evidence.id
    assert vigil("--url", address, "--yes")[0] == 0
    assert stored(session) == [kept]

    report = seen_again(session, replace_id(evidence, "another-alert-entry"), charlie, source="rss")

    assert report.erased == 1 and stored(session) == [kept]


def replace_id(mention: Mention, external_id: str) -> Mention:
    return Mention(source=mention.source, external_id=external_id, url=mention.url)
