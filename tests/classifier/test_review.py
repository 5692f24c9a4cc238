from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import cast

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from classifier.model import Classifier, Prediction, load_classifier
from classifier.review import correct_labels, corrections, parse_labels
from classifier.step import classify_pending, store
from tests.classifier.test_step import TEXTS, add_mentions, classifications
from vigil.db import transaction
from vigil.errors import VigilError
from vigil.runtime import Runtime
from vigil.settings import Settings


@pytest.fixture
def rt(classifier_settings: Settings) -> Runtime:
    return Runtime(classifier_settings)


@pytest.fixture
def classifier(classifier_settings: Settings) -> Classifier:
    return load_classifier(classifier_settings)


@pytest.mark.parametrize(
    ("given", "labels"),
    [
        ("threat", ("threat",)),
        ("Praise, THREAT", ("threat", "praise")),  # any case, in the usual order
        ("abusive,abusive", ("abusive",)),
        ("none", ()),
    ],
)
def test_it_reads_the_labels_a_person_gives(given: str, labels: tuple[str, ...]) -> None:
    assert parse_labels(given) == labels


@pytest.mark.parametrize("given", ["", ",", "threats", "neutral"])
def test_it_refuses_labels_it_does_not_know_naming_them(given: str) -> None:
    with pytest.raises(VigilError, match="--labels: expected some of threat, abusive, critical, praise"):
        parse_labels(given)


def test_a_correction_keeps_the_models_scores_and_says_who_set_the_labels(
    session: Session, rt: Runtime, classifier: Classifier
) -> None:
    ids = add_mentions(session, TEXTS[:2])
    classify_pending(rt, classifier)
    scores = classifications(session)[1].scores

    [correction] = correct_labels(session, [ids[1]], ["critical"], by="Priya (case team)")
    session.commit()

    row = classifications(session)[1]
    assert (row.model_id, row.model_version, row.labels, row.scores) == (
        "reviewed", "Priya (case team)", ["critical"], scores,
    )  # fmt: skip
    assert correction.after == ("critical",) and correction.before == tuple(
        classifier.predict(TEXTS[1:2])[0].labels
    )


def test_an_unknown_id_changes_nothing_and_is_named(session: Session) -> None:
    [known] = add_mentions(session, TEXTS[:1])
    with pytest.raises(VigilError, match="no stored mention has the id\\(s\\) 999; nothing changed"):
        correct_labels(session, [known, 999], ["threat"], by="Priya")
    session.rollback()
    assert classifications(session) == []


def test_no_ids_is_no_correction(session: Session) -> None:
    assert correct_labels(session, [], ["threat"], by="Priya") == []


def test_a_mention_not_yet_labelled_can_be_labelled_by_a_person_and_the_model_leaves_it(
    session: Session, rt: Runtime, classifier: Classifier
) -> None:
    ids = add_mentions(session, TEXTS[:2])
    correct_labels(session, [ids[0]], ["praise"], by="Priya")
    session.commit()
    assert classify_pending(rt, classifier) == 1  # the other one
    assert classifications(session)[0].labels == ["praise"]


def test_reclassify_never_replaces_labels_a_person_set(
    session: Session, rt: Runtime, classifier: Classifier
) -> None:
    ids = add_mentions(session, TEXTS)
    classify_pending(rt, classifier)
    correct_labels(session, [ids[1]], [], by="Priya")  # "I know where you live": a film quote, say
    session.commit()
    new_model = classifier.__class__.__new__(classifier.__class__)
    new_model.__dict__.update(classifier.__dict__, version="next")

    assert classify_pending(rt, new_model, reclassify=True) == 4
    rows = classifications(session)
    assert (rows[1].model_id, rows[1].labels) == ("reviewed", [])
    assert {row.model_version for i, row in enumerate(rows) if i != 1} == {"next"}


def test_labels_a_person_set_while_the_model_was_labelling_are_kept(
    session: Session, rt: Runtime, classifier: Classifier
) -> None:
    """The model's batch was claimed and scored, then the case team set the labels, then the batch
    was stored."""
    [mention_id] = add_mentions(session, TEXTS[1:2])
    predictions = dict(zip([mention_id], classifier.predict(TEXTS[1:2]), strict=True))
    correct_labels(session, [mention_id], ["critical"], by="Priya")
    session.commit()

    store(session, classifier, predictions, token="worker:1")
    session.commit()

    assert classifications(session)[0].labels == ["critical"]


def test_labels_a_person_sets_while_a_new_models_batch_is_stored_are_all_the_persons(
    backend: str, session: Session, engine: Engine
) -> None:
    """The case team clears a false threat while a reclassify is storing a batch: the batch lands
    after the correction read the old labels and before it wrote its own. None of the new model's
    labels may stay under the person's name (an abuse alert "(reviewed)" that no model replaces)."""
    if backend != "postgresql":
        pytest.skip("SQLite runs one writer at a time: no batch is stored meanwhile")
    [mention_id] = add_mentions(session, TEXTS[:1])
    old, new = model("v1"), model("v2")
    store(session, old, {mention_id: Prediction({}, ("threat",))}, token="worker:1")
    session.commit()
    worker = threading.Thread(target=store_in_a_worker, args=(engine, new, mention_id, ("threat", "abusive")))

    run_before_the_correction_writes(session, worker)
    correct_labels(session, [mention_id], [], by="Priya")
    session.commit()
    worker.join()

    row = classifications(session)[0]
    assert (row.model_id, row.labels) == ("reviewed", [])


def test_labels_a_person_sets_on_an_unlabelled_mention_while_its_first_batch_is_stored_win(
    backend: str, session: Session, engine: Engine
) -> None:
    """The case team labels a mention the model has not labelled yet while the classify step stores
    it: both write its first labels. The batch lands after the correction found none and before it
    wrote its own; the correction neither fails nor leaves the model's labels."""
    if backend != "postgresql":
        pytest.skip("SQLite runs one writer at a time: no batch is stored meanwhile")
    [mention_id] = add_mentions(session, TEXTS[:1])
    worker = threading.Thread(
        target=store_in_a_worker, args=(engine, model("v1"), mention_id, ("threat", "abusive"))
    )
    run_before_the_correction_writes(session, worker)
    correct_labels(session, [mention_id], ["critical"], by="Priya")
    session.commit()
    worker.join()

    row = classifications(session)[0]
    assert (row.model_id, row.model_version, row.labels) == ("reviewed", "Priya", ["critical"])


def run_before_the_correction_writes(session: Session, worker: threading.Thread) -> None:
    """Start the worker just before this session writes any labels, once it has read the old ones."""

    def start_worker(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        writes = statement.startswith(("INSERT INTO classifications", "UPDATE classifications"))
        if writes and worker.ident is None:
            worker.start()
            worker.join(timeout=2)  # it may wait for the correction to commit

    event.listen(session.connection(), "before_cursor_execute", start_worker)


def model(version: str) -> Classifier:
    return cast(Classifier, SimpleNamespace(model_id="vigil-test", version=version))


def store_in_a_worker(
    engine: Engine, classifier: Classifier, mention_id: int, labels: tuple[str, ...]
) -> None:
    with transaction(engine) as other:
        store(other, classifier, {mention_id: Prediction({}, labels)}, token="worker:2")


def test_corrections_come_back_as_corpus_lines(session: Session, rt: Runtime, classifier: Classifier) -> None:
    ids = add_mentions(session, TEXTS)
    classify_pending(rt, classifier)
    correct_labels(session, [ids[3]], ["threat", "abusive"], by="Priya")
    correct_labels(session, [ids[0]], [], by="Sam")
    session.commit()

    assert list(corrections(session)) == [  # in the order they were made
        {"text": TEXTS[3], "labels": ["threat", "abusive"]},
        {"text": TEXTS[0], "labels": []},
    ]
