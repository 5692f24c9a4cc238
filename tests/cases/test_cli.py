"""``vigil cases``: detect, list, show and update, as the case team uses them."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from cases.workflow import Finding, open_or_feed
from tests.alerts.conftest import assert_unfinished_weeks_refused
from tests.cases.conftest import Post
from tests.conftest import Tenancy, make_practice_tenant
from vigil.cli import app
from vigil.models import CaseReason, Severity, utcnow

runner = CliRunner()


def vigil(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


@pytest.fixture
def threat_case(session: Session, post: Post, alice: Tenancy, env: dict[str, str], tmp_path: object) -> int:
    """One threat case, opened by `vigil cases detect` (emails go to files under var/)."""
    post(
        alice.doctors[0],
        at=utcnow() - timedelta(minutes=10),
        author="@angry\x1b[2J",
        labels=("threat",),
        text="Watch your back, Dr Amira Hassan \x1b]0;pwned\x07[bold]boo[/bold]",
    )
    session.commit()
    code, output = vigil("cases", "detect")
    assert code == 0, output
    assert "1 mentions scanned (1 flagged), 1 cases opened" in output
    return 1


@pytest.fixture(autouse=True)
def outbox_in_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.setenv("VIGIL_EMAIL__OUTBOX_DIR", str(tmp_path))


def test_list_json_gives_every_open_case_with_its_members(threat_case: int) -> None:
    code, output = vigil("cases", "list", "--json")
    assert code == 0
    [row] = json.loads(output)
    assert row["id"] == threat_case and row["reason"] == "threat" and row["status"] == "new"
    assert row["severity"] == "critical" and row["mentions"] == 1
    name = "Dr Amira Hassan (GMC 1000001, Alice Road Surgery)"  # the practice: whom to call
    assert row["entities"] == [{"kind": "doctor", "id": 1, "name": name}]
    assert row["figures"] == ["1 post that may be threatening."]


def test_list_puts_the_most_severe_first_and_reads_as_the_emails_do(
    threat_case: int, session: Session, post: Post, bob: Tenancy
) -> None:
    mention = post(bob.doctors[0], at=utcnow() - timedelta(minutes=5), labels=("abusive",))
    figures = {"authors": 5, "hours": 6, "expected": 0.3, "tail_probability": 1e-5}
    entity = ("doctor", bob.doctors[0].id)
    pile_on = Finding(CaseReason.PILE_ON, [entity], [mention.id], Severity.MEDIUM, "Pile-on", figures)
    open_or_feed(session, pile_on, utcnow())  # opened after the threat case: newer, less severe
    session.commit()
    code, output = vigil("cases", "list", "--json")
    assert code == 0, output
    rows = json.loads(output)
    assert [(row["id"], row["top_threat_score"]) for row in rows] == [(threat_case, 0.91), (2, None)]
    code, output = vigil("cases", "list")
    assert code == 0, output
    assert output.index("Possible threat against") < output.index("Pile-on ·")
    assert "Threat · critical · new · 1 post · threat score up to 91%" in output
    assert "1 posts" not in output
    assert re.search(r"\d{1,2}:\d\d (GMT|BST)", output)  # on the practice's clock, with the zone
    for spelling in ("pile-on", "pile_on", "Pile-on"):
        rows = json.loads(vigil("cases", "list", "--reason", spelling, "--json")[1])
        assert [row["reason"] for row in rows] == ["pile_on"]
    code, output = vigil("cases", "list", "--reason", "mob")
    assert code == 1 and "expected one of spike, pile-on, threat, campaign" in output


def test_list_does_not_give_a_threat_the_case_team_confirmed_the_models_low_score(
    session: Session, post: Post, alice: Tenancy, env: dict[str, str]
) -> None:
    """A threat the model missed (it said abuse) and a person labelled: the list must not tell the
    case team that the case is probably a false alarm."""
    missed = post(alice.doctors[0], at=utcnow() - timedelta(minutes=10), labels=("abusive",))
    assert vigil("mentions", "label", str(missed.id), "--labels", "threat,abusive", "--by", "Priya")[0] == 0
    assert vigil("cases", "detect")[0] == 0

    [row] = json.loads(vigil("cases", "list", "--json")[1])
    assert row["reason"] == "threat" and row["top_threat_score"] == 1.0
    assert "threat score up to 0%" not in vigil("cases", "list")[1]


def test_list_filters_by_status(threat_case: int) -> None:
    assert json.loads(vigil("cases", "list", "--status", "closed", "--json")[1]) == []
    assert len(json.loads(vigil("cases", "list", "--status", "all", "--json")[1])) == 1
    code, output = vigil("cases", "list", "--status", "shut")
    assert code == 1
    assert "error: --status 'shut': expected one of new, triaged, escalated, closed, open, all" in output


def test_list_with_no_cases_says_so_without_an_empty_table(env: dict[str, str]) -> None:
    code, output = vigil("cases", "list")
    assert code == 0, output
    assert output == "No open cases.\n"


def test_show_json_has_the_evidence_and_the_history(threat_case: int) -> None:
    code, output = vigil("cases", "show", str(threat_case), "--json")
    assert code == 0
    assert "\x1b" not in output  # JSON escapes every control character
    detail = json.loads(output)
    [evidence] = detail["evidence"]
    assert evidence["labels"] == ["threat"] and evidence["text"].startswith("Watch your back")
    assert [(e["actor"], e["action"]) for e in detail["history"]] == [("vigil", "opened")]


def test_show_prints_scraped_text_without_terminal_controls_or_markup(threat_case: int) -> None:
    code, output = vigil("cases", "show", str(threat_case))
    assert code == 0
    assert "\x1b" not in output and "\x07" not in output
    assert "[bold]boo[/bold]" in output  # shown as typed, not read as markup
    assert "Possible threat against Dr Amira Hassan" in output
    assert "threat 91%" in output  # the evidence's score: a weak label reads as weak
    assert "+00:00" not in output and re.search(r"opened \d{4}-\d\d-\d\d \d\d:\d\d (GMT|BST)", output)


def test_show_names_the_members_each_post_is_about(session: Session, post: Post, env: dict[str, str]) -> None:
    """A campaign's posts name different members, here by GMC number, which the text does not give."""
    tenancies = [
        make_practice_tenant(
            session, f"P{n:05d}", f"Practice {n}", "Leeds", [(f"{9000000 + n}", f"Doc Number{n}")]
        )
        for n in range(3)
    ]
    for i, tenancy in enumerate(tenancies):
        doctor = tenancy.doctors[0]
        post(
            doctor,
            at=utcnow() - timedelta(hours=3 - i),
            author=f"acct{i}",
            labels=("abusive",),
            text=f"The GP at the practice misdiagnosed my son and then covered it up. Do NOT trust this doctor! ({i})",
            matched=[f"GMC {doctor.gmc_number}"],
        )
    assert vigil("cases", "detect")[0] == 0
    detail = json.loads(vigil("cases", "show", "1", "--json")[1])
    assert [e["members"] for e in detail["evidence"]] == [
        [f"Dr Doc Number{n} (GMC {9000000 + n}, Practice {n})"] for n in range(3)
    ]
    code, output = vigil("cases", "show", "1")
    assert code == 0 and "About: Dr Doc Number2 (GMC" in output  # above each post's text


def test_list_says_when_a_case_last_had_new_evidence(
    threat_case: int, session: Session, post: Post, alice: Tenancy
) -> None:
    code, output = vigil("cases", "list")
    assert code == 0 and "new evidence" not in output  # nothing since the opening email
    post(alice.doctors[0], at=utcnow() - timedelta(minutes=2), author="@again", labels=("abusive",))
    session.commit()
    assert vigil("cases", "detect")[0] == 0
    code, output = vigil("cases", "list")
    assert code == 0 and re.search(r"new evidence \d{4}-\d\d-\d\d\s+\d\d:\d\d (GMT|BST)", output), output


def test_update_refuses_to_write_as_vigil_or_to_reassign_a_closed_case(threat_case: int) -> None:
    code, output = vigil("cases", "update", "1", "--note", "evidence reviewed", "--by", "vigil")
    assert (code, output.strip()) == (
        1,
        "error: 'vigil' is detection's own name in the history: give yours (--by NAME)",
    )
    assert vigil("cases", "update", "1", "--status", "triaged", "--by", "Priya")[0] == 0
    assert vigil("cases", "update", "1", "--status", "closed", "--by", "Priya")[0] == 0
    code, output = vigil("cases", "update", "1", "--assignee", "Sam", "--by", "Priya")
    assert (code, output.strip()) == (1, "error: case 1 is closed: it can take a note, not a new assignee")


def test_update_records_who_changed_what(threat_case: int) -> None:
    code, output = vigil(
        "cases",
        "update",
        "1",
        "--status",
        "triaged",
        "--assignee",
        "Sam",
        "--note",
        "Called the GP.",
        "--by",
        "Priya",
    )
    assert code == 0, output
    assert "Case #1: assignee - → Sam; note added; status new → triaged." in output
    history = json.loads(vigil("cases", "show", "1", "--json")[1])["history"]
    assert [(e["actor"], e["action"], e["to"] or e["note"]) for e in history[1:]] == [
        ("Priya", "assignee", "Sam"),
        ("Priya", "note", "Called the GP."),
        ("Priya", "status", "triaged"),
    ]


def test_an_invalid_transition_is_one_clear_error_line(threat_case: int) -> None:
    code, output = vigil("cases", "update", "1", "--status", "closed", "--by", "Priya")
    assert code == 1
    assert output.strip() == "error: case 1 is new: it can move to triaged, not to closed"


@pytest.mark.parametrize("status", ["done", "open"])
def test_a_status_update_cannot_take_names_only_the_statuses_it_can(threat_case: int, status: str) -> None:
    code, output = vigil("cases", "update", "1", "--status", status, "--by", "Priya")
    assert (code, output.strip()) == (
        1,
        f"error: --status {status!r}: expected one of triaged, escalated, closed",
    )


def test_a_blank_assignee_or_note_is_no_change_and_leaves_no_blank_in_the_history(threat_case: int) -> None:
    code, output = vigil("cases", "update", "1", "--note", " \n ", "--by", "Priya")
    assert (code, output.strip()) == (1, "error: nothing to change: give --status, --assignee and/or --note")
    assert vigil("cases", "update", "1", "--assignee", "  ", "--by", "Priya") == (0, "Case #1: no change.\n")
    code, output = vigil("cases", "update", "1", "--assignee", " Sam ", "--by", "Priya")
    assert code == 0 and "Case #1: assignee - → Sam." in output
    detail = json.loads(vigil("cases", "show", "1", "--json")[1])
    assert detail["assignee"] == "Sam"
    assert [(e["action"], e["to"], e["note"]) for e in detail["history"][1:]] == [("assignee", "Sam", "")]


@pytest.mark.usefixtures("env")
def test_unknown_cases_and_empty_updates_are_clear_errors() -> None:
    assert vigil("cases", "show", "99") == (1, "error: there is no case 99\n")
    code, output = vigil("cases", "update", "99")
    assert code == 1 and "nothing to change" in output


def test_status_shows_open_cases_by_status_and_reason(threat_case: int) -> None:
    code, output = vigil("status")
    assert code == 0
    assert "Open cases" in output and "threat" in output
    assert re.search(r"Awaiting detection\s+│ 0", output)
    assert re.search(r"  threat\s+│ 1", output)
    assert re.search(r"Last detection\s+│ \d{4}-\d\d-\d\d \d\d:\d\d (GMT|BST) ", output)  # the org's clock


@pytest.mark.usefixtures("env")
def test_the_organisation_digest_of_a_week_still_running_is_refused(session: Session, org: Tenancy) -> None:
    this_week = assert_unfinished_weeks_refused(["cases", "digest"], session)
    session.commit()  # end the read: on SQLite it holds the write lock
    code, output = vigil("cases", "digest")
    assert code == 0, output
    assert f"Organisation digest for {this_week.previous()}: 1 emails queued" in output
