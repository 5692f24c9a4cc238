from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from alerts.config import AlertsConfig
from alerts.digest import build_digests
from alerts.weeks import Week
from classifier.review import correct_labels
from tests.alerts.conftest import Factory
from tests.alerts.test_digest import LAST_WEEK, THIS_WEEK, build, digest_for, parts
from tests.conftest import Tenancy

HEADER = [
    "Found (Europe/London)", "Posted (Europe/London)", "Platform", "Author", "About", "Labels", "Link", "Text",
]  # fmt: skip


def attached(message: EmailMessage) -> tuple[str, list[dict[str, str]]] | None:
    """The digest's CSV attachment as its file name and rows (None if there is none)."""
    files = [part for part in message.iter_attachments() if part.get_content_type() == "text/csv"]
    if not files:
        return None
    (file,) = files
    data = file.get_payload(decode=True)
    assert isinstance(data, bytes) and data.startswith("\ufeff".encode())  # Excel reads it as UTF-8
    reader = csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""))
    assert next(reader) == HEADER
    return str(file.get_filename()), [dict(zip(HEADER, cells, strict=True)) for cells in reader]


def test_the_digest_attaches_every_post_of_the_week_threats_and_abuse_first(
    session: Session, engine: Engine, config: AlertsConfig, make: Factory, alice: Tenancy
) -> None:
    make.mention(alice, labels=["praise"], text="Lovely nurse", created_at=THIS_WEEK)
    make.mention(alice, text="Not labelled yet", created_at=THIS_WEEK, classify=False)
    make.mention(alice, text="Opening hours changed", created_at=THIS_WEEK + timedelta(hours=1))
    make.mention(alice, labels=["critical", "threat"], text="Watch your back", created_at=THIS_WEEK)
    make.mention(alice, labels=["abusive"], text="Useless cow", created_at=THIS_WEEK + timedelta(hours=2))
    make.mention(alice, labels=["critical"], text="Last week's complaint", created_at=LAST_WEEK)
    build(engine, config)
    message = digest_for(session, alice.recipient.email)
    file = attached(message)
    assert file is not None
    name, rows = file
    assert name == "vigil-2026-W46.csv"
    assert [row["Text"] for row in rows] == [
        "Watch your back", "Useless cow", "Not labelled yet", "Lovely nurse", "Opening hours changed",
    ]  # fmt: skip
    assert [row["Labels"] for row in rows] == [
        "Possible threat 91%; Criticism 91%", "Abuse 91%", "Not yet labelled", "Praise 91%", "Other mentions",
    ]  # fmt: skip
    first = rows[0]
    assert first["Found (Europe/London)"] == first["Posted (Europe/London)"] == "2026-11-11 10:00"
    assert first["Platform"] == "X" and first["Author"] == "'@someone"  # '@' can start a formula too
    assert first["About"] == "Dr Amira Hassan (Alice Road Surgery)"
    assert first["Link"].startswith("https://x.com/someone/status/")
    for part in parts(message):
        assert "All 5 posts are in the attached file, vigil-2026-W46.csv, to sort and keep." in part
        assert "starts with '" in part  # the handles: what the file changed is said


def test_times_in_the_file_are_on_the_practices_clock_in_summer_too(
    session: Session, engine: Engine, config: AlertsConfig, make: Factory, alice: Tenancy
) -> None:
    july = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)  # 11:00 BST
    make.mention(alice, text="Summer post", author="someone", created_at=july)
    build_digests(engine, config, Week(2026, 27), now=july + timedelta(days=7))
    message = digest_for(session, alice.recipient.email)
    file = attached(message)
    assert file is not None
    (row,) = file[1]
    assert row["Found (Europe/London)"] == row["Posted (Europe/London)"] == "2026-07-01 11:00"
    assert "starts with '" not in parts(message)[0]  # nothing was escaped, so nothing is said


def test_a_time_in_the_hour_the_clocks_go_back_says_which_of_the_two_it_is(
    session: Session, engine: Engine, config: AlertsConfig, make: Factory, alice: Tenancy
) -> None:
    assert alice.recipient
    make.mention(alice, text="earlier", created_at=datetime(2026, 10, 25, 0, 30, tzinfo=UTC))  # 01:30 BST
    make.mention(alice, text="later", created_at=datetime(2026, 10, 25, 1, 30, tzinfo=UTC))  # 01:30 GMT
    make.mention(alice, text="after", created_at=datetime(2026, 10, 25, 2, 30, tzinfo=UTC))  # 02:30 GMT
    build_digests(engine, config, Week(2026, 43), now=datetime(2026, 10, 26, 8, tzinfo=UTC))
    file = attached(digest_for(session, alice.recipient.email))
    assert file is not None
    posted = {row["Text"]: row["Posted (Europe/London)"] for row in file[1]}
    assert posted == {
        "earlier": "2026-10-25 01:30 BST",
        "later": "2026-10-25 01:30 GMT",
        "after": "2026-10-25 02:30",
    }


def test_within_a_label_the_highest_score_comes_first_as_in_the_email(
    session: Session, engine: Engine, config: AlertsConfig, make: Factory, alice: Tenancy
) -> None:
    make.mention(alice, labels=["threat"], scores={"threat": 0.95}, text="Sure", created_at=THIS_WEEK)
    make.mention(alice, labels=["threat"], scores={"threat": 0.2}, text="Weak", created_at=THIS_WEEK)
    make.mention(alice, labels=["threat"], scores={"threat": 0.6}, text="Likely", created_at=THIS_WEEK)
    build(engine, config)
    message = digest_for(session, alice.recipient.email)
    file = attached(message)
    assert file is not None
    assert [(row["Text"], row["Labels"]) for row in file[1]] == [
        ("Sure", "Possible threat 95%"), ("Likely", "Possible threat 60%"), ("Weak", "Possible threat 20%"),
    ]  # fmt: skip
    text, _ = parts(message)
    assert text.index("Sure") < text.index("Likely") < text.index("Weak")


def test_a_threat_the_case_team_set_comes_first_in_the_email_and_the_file(
    session: Session, engine: Engine, config: AlertsConfig, make: Factory, alice: Tenancy
) -> None:
    """The model scored it 4 %: that is what the case team corrected, not how sure it is."""
    make.mention(alice, labels=["threat"], scores={"threat": 0.95}, text="Sure", created_at=THIS_WEEK)
    missed = make.mention(alice, text="Missed", scores={"threat": 0.04}, created_at=THIS_WEEK)
    correct_labels(session, [missed.id], ["threat"], by="Priya")
    session.commit()
    build(engine, config)
    message = digest_for(session, alice.recipient.email)
    file = attached(message)
    assert file is not None
    assert [(row["Text"], row["Labels"]) for row in file[1]] == [
        ("Missed", "Possible threat (reviewed)"), ("Sure", "Possible threat 95%"),
    ]  # fmt: skip
    text, _ = parts(message)
    assert text.index("Missed") < text.index("Sure")


def test_a_post_is_in_the_file_of_the_week_it_was_found(
    session: Session, engine: Engine, config: AlertsConfig, make: Factory, alice: Tenancy
) -> None:
    make.mention(alice, text="Found late", created_at=LAST_WEEK, found_at=THIS_WEEK)
    build(engine, config)
    file = attached(digest_for(session, alice.recipient.email))
    assert file is not None
    (row,) = file[1]
    assert row["Posted (Europe/London)"] == "2026-11-04 10:00"
    assert row["Found (Europe/London)"] == "2026-11-11 10:00"


def test_a_practice_file_holds_only_its_own_posts_and_names(
    session: Session, engine: Engine, config: AlertsConfig, make: Factory, alice: Tenancy, bob: Tenancy
) -> None:
    make.mention(alice, labels=["threat"], text="Secret threat", created_at=THIS_WEEK)
    make.mention(alice, bob, labels=["critical"], text="Both practices are slow", created_at=THIS_WEEK)
    build(engine, config)
    file = attached(digest_for(session, bob.recipient.email))
    assert file is not None
    (row,) = file[1]
    assert row["Text"] == "Both practices are slow"
    assert "Bob" in row["About"] and "Alice" not in row["About"] and "Amira" not in row["About"]


def test_scraped_text_in_the_file_cannot_run_as_a_formula(
    session: Session, engine: Engine, config: AlertsConfig, make: Factory, alice: Tenancy
) -> None:
    formula = '=HYPERLINK("https://evil.example","Click")'
    make.mention(alice, text=formula, author="@evil", created_at=THIS_WEEK)
    make.mention(alice, text="plain", author="=1+1", created_at=THIS_WEEK)
    build(engine, config)
    file = attached(digest_for(session, alice.recipient.email))
    assert file is not None
    cells = {cell for row in file[1] for cell in row.values()}
    assert "'" + formula in cells and "'=1+1" in cells
    assert formula not in cells and "=1+1" not in cells


def test_a_capped_file_keeps_the_threats_and_says_how_many_it_lists(
    session: Session, engine: Engine, config: AlertsConfig, make: Factory, alice: Tenancy
) -> None:
    for number in range(3):
        make.mention(alice, labels=["critical"], text=f"Complaint {number}", created_at=THIS_WEEK)
    make.mention(alice, labels=["threat"], text="Threat", created_at=THIS_WEEK - timedelta(hours=1))
    capped = replace(config, digest=replace(config.digest, file_rows=2, top_items=1))
    build(engine, capped)
    message = digest_for(session, alice.recipient.email)
    file = attached(message)
    assert file is not None
    assert [row["Text"] for row in file[1]] == ["Threat", "Complaint 2"]
    text, html = parts(message)
    for part in (text, html):
        assert "lists 2 of these 4 posts: threats, abuse and posts not yet labelled first" in part
        assert "And 2 more." in part  # not "in the attached file": the cap left them out


def test_no_file_is_attached_when_turned_off_or_in_a_quiet_week(
    session: Session, engine: Engine, config: AlertsConfig, make: Factory, alice: Tenancy, bob: Tenancy
) -> None:
    make.mention(alice, labels=["critical"], created_at=THIS_WEEK)
    make.mention(alice, labels=["critical"], created_at=THIS_WEEK)
    make.mention(alice, labels=["critical"], created_at=THIS_WEEK)
    off = replace(config, digest=replace(config.digest, file_rows=0, top_items=1))
    build(engine, off)
    message = digest_for(session, alice.recipient.email)
    assert attached(message) is None
    text, html = parts(message)
    assert "And 2 more." in text and "attached" not in text and "attached" not in html
    assert attached(digest_for(session, bob.recipient.email)) is None  # bob's week was quiet
