from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from alerts.config import AlertsConfig, load_config
from alerts.jobs import route_new_mentions
from cases.detect import DetectionSettings
from tests.alerts.conftest import NOW, Factory
from tests.alerts.test_routing import alert_recipients, alerts_sent, html_of
from tests.cases.conftest import cases_of, run_detection
from tests.conftest import Tenancy
from vigil.cli import app
from vigil.models import Classification
from vigil.settings import Settings

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("env")


def vigil(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


@pytest.fixture
def make(session: Session) -> Factory:
    return Factory(session)


@pytest.fixture
def config(settings: Settings) -> AlertsConfig:
    return load_config(settings)


@pytest.fixture
def detection(settings: Settings) -> DetectionSettings:
    return DetectionSettings.from_settings(settings)


def labels_of(session: Session, mention_id: int) -> tuple[str, str, list[str]]:
    query = select(Classification).where(Classification.mention_id == mention_id)
    row = session.scalars(query.execution_options(populate_existing=True)).one()  # as the command left it
    session.commit()
    return row.model_id, row.model_version, row.labels


def test_a_missed_threat_set_by_the_case_team_is_alerted_at_once_and_opens_a_case(
    session: Session,
    engine: Engine,
    config: AlertsConfig,
    detection: DetectionSettings,
    make: Factory,
    alice: Tenancy,
) -> None:
    missed = make.mention(
        alice, labels=["critical"], text="Complaint's in. I also know which car is hers."
    ).id
    route_new_mentions(engine, config, NOW)
    run_detection(session, detection, NOW)
    assert alert_recipients(session) == [] and cases_of(session) == []
    session.commit()  # on SQLite every transaction holds the write lock, which the command needs

    code, shown = vigil("mentions", "label", str(missed), "--labels", "threat,critical", "--by", "Priya")

    assert code == 0, shown
    assert f"mention {missed}: critical -> threat, critical" in shown
    assert labels_of(session, missed) == ("reviewed", "Priya", ["threat", "critical"])
    route_new_mentions(engine, config, NOW)
    [alert] = alerts_sent(session)
    assert alert.recipient_email == alice.recipient.email  # type: ignore[union-attr]
    html = html_of(alert)
    assert "Possible threat (reviewed)" in html and "Possible threat 4%" not in html  # the model's score
    run_detection(session, detection, NOW)
    assert len(cases_of(session, "threat")) == 1


def test_a_false_threat_corrected_alerts_nobody_again(
    session: Session, engine: Engine, config: AlertsConfig, make: Factory, alice: Tenancy
) -> None:
    false_alarm = make.mention(
        alice, labels=["threat"], text="Hope everyone at Lister House has a great break"
    ).id
    route_new_mentions(engine, config, NOW)
    assert len(alerts_sent(session)) == 1

    assert vigil("mentions", "label", str(false_alarm), "--labels", "none", "--by", "Priya")[0] == 0
    route_new_mentions(engine, config, NOW)

    assert len(alerts_sent(session)) == 1
    assert labels_of(session, false_alarm) == ("reviewed", "Priya", [])


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--labels", "threats"], "--labels: expected some of threat, abusive, critical, praise"),
        (["--labels", "none,threat"], "--labels: none means no label, so it stands alone; got none, threat"),
        (["--labels", "threat", "--by", "x" * 65], "--by: give who reviewed the labels, in at most 64"),
    ],
)
def test_a_bad_correction_is_refused_naming_what_was_wrong(
    session: Session, make: Factory, alice: Tenancy, args: list[str], error: str
) -> None:
    mention = make.mention(alice, labels=["critical"])
    code, shown = vigil("mentions", "label", str(mention.id), *args)
    assert code == 1 and error in " ".join(shown.split())
    assert labels_of(session, mention.id)[0] == "test-model"


def test_an_unknown_mention_is_refused_and_nothing_changes(
    session: Session, make: Factory, alice: Tenancy
) -> None:
    mention = make.mention(alice, labels=["critical"])
    code, shown = vigil("mentions", "label", str(mention.id), "999", "--labels", "none", "--by", "Priya")
    assert code == 1 and "no stored mention has the id(s) 999; nothing changed" in shown
    assert labels_of(session, mention.id)[0] == "test-model"


def test_corrections_are_written_as_corpus_lines(
    session: Session, make: Factory, alice: Tenancy, tmp_path: Path
) -> None:
    hostile = make.mention(alice, labels=["threat"], text="Lovely GP \x1b]0;PWNED\x07 \u202eevil")
    make.mention(alice, labels=["abusive"])  # not reviewed: not written
    assert vigil("mentions", "label", str(hostile.id), "--labels", "praise", "--by", "Priya")[0] == 0

    code, shown = vigil("model", "corrections")
    assert code == 0
    assert not any(character in shown for character in "\x1b\x07\u202e")
    assert [json.loads(line) for line in shown.splitlines()] == [{"text": hostile.text, "labels": ["praise"]}]

    out = tmp_path / "corrections.jsonl"
    code, shown = vigil("model", "corrections", "--output", str(out))
    assert code == 0 and "wrote 1 correction(s)" in shown
    assert json.loads(out.read_text()) == {"text": hostile.text, "labels": ["praise"]}


def test_case_evidence_shows_each_mentions_id_and_who_set_its_labels(
    session: Session, detection: DetectionSettings, make: Factory, alice: Tenancy
) -> None:
    threat = make.mention(alice, labels=["threat"]).id
    run_detection(session, detection, NOW)
    [case] = [case.id for case in cases_of(session, "threat")]
    session.commit()
    assert vigil("mentions", "label", str(threat), "--labels", "critical", "--by", "Priya")[0] == 0

    code, shown = vigil("cases", "show", str(case))

    assert code == 0, shown
    assert re.search(rf"^│ {threat} +│", shown, re.MULTILINE) and "Priya)" in shown
    [evidence] = json.loads(vigil("cases", "show", str(case), "--json")[1])["evidence"]
    assert (evidence["id"], evidence["labels"], evidence["reviewed_by"]) == (threat, ["critical"], "Priya")


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_a_missed_threat_in_no_case_is_found_by_its_id_in_mentions_export(
    session: Session, make: Factory, alice: Tenancy, fmt: str
) -> None:
    missed = make.mention(alice, labels=[], text="I know which car is hers.").id
    session.commit()

    code, shown = vigil("mentions", "export", "--format", fmt)

    assert code == 0, shown
    rows = (
        [json.loads(line) for line in shown.splitlines()]
        if fmt == "jsonl"
        else list(csv.DictReader(io.StringIO(shown)))
    )
    [row] = [row for row in rows if row["text"] == "I know which car is hers."]
    assert str(row["id"]) == str(missed), rows
    code, shown = vigil("mentions", "label", str(row["id"]), "--labels", "threat", "--by", "Priya")
    assert code == 0 and f"mention {missed}: none -> threat" in shown, shown
    assert labels_of(session, missed) == ("reviewed", "Priya", ["threat"])


def test_status_counts_the_labels_people_set_in_one_row(
    session: Session, make: Factory, alice: Tenancy
) -> None:
    first, second = make.mention(alice, labels=["threat"]).id, make.mention(alice, labels=["critical"]).id
    assert vigil("mentions", "label", str(first), "--labels", "none", "--by", "Priya")[0] == 0
    assert vigil("mentions", "label", str(second), "--labels", "praise", "--by", "Sam")[0] == 0

    _, shown = vigil("status")

    assert re.search(r"Labels set by people\s+│ 2 \(vigil mentions label\)", shown), shown
    assert "by reviewed" not in shown
