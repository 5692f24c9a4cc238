from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from classifier.model import Classifier, load_classifier
from classifier.step import classify_pending, count, stale, unclassified
from vigil.models import Classification, Mention
from vigil.runtime import Runtime
from vigil.service import run_pipeline
from vigil.settings import Settings

TEXTS = [
    "Dr Hassan was so kind to my dad, thank you",
    "I know where you live and I am coming for you",
    "useless cow of a receptionist hung up on me",
    "flu clinic this saturday at Alice Road Surgery",
    "waited three weeks for a call back, shocking",
]


def add_mentions(session: Session, texts: list[str]) -> list[int]:
    mentions = [
        Mention(source="x", external_id=str(i), text=text, created_at=datetime(2026, 11, 2, tzinfo=UTC))
        for i, text in enumerate(texts)
    ]
    session.add_all(mentions)
    session.commit()
    return [mention.id for mention in mentions]


def classifications(session: Session) -> list[Classification]:
    session.expire_all()
    return list(session.scalars(select(Classification).order_by(Classification.mention_id)))


@pytest.fixture
def rt(classifier_settings: Settings) -> Runtime:
    return Runtime(classifier_settings.with_overrides(classifier__claim_size=2))


@pytest.fixture
def classifier(classifier_settings: Settings) -> Classifier:
    return load_classifier(classifier_settings)


def test_it_labels_every_pending_mention_with_the_model_version_and_every_score(
    session: Session, rt: Runtime, classifier: Classifier
) -> None:
    ids = add_mentions(session, TEXTS)
    batches: list[int] = []
    assert classify_pending(rt, classifier, on_batch=batches.append) == 5
    assert batches == [2, 2, 1]  # claimed and committed two at a time
    stored = classifications(session)
    assert [c.mention_id for c in stored] == ids
    expected = classifier.predict(TEXTS)
    for row, prediction in zip(stored, expected, strict=True):
        assert row.model_id == "vigil" and row.model_version == classifier.version
        assert row.scores == pytest.approx(prediction.scores, abs=1e-3)  # int8 scales per batch
        # The tiny model is seeded, so no score sits at a threshold where int8 could tip it.
        assert tuple(row.labels) == prediction.labels
        assert tuple(row.labels) == tuple(
            label for label in classifier.labels if row.scores[label] >= classifier.thresholds[label]
        )
    assert session.scalar(select(func.count()).where(Mention.classify_claimed_by.is_not(None))) == 0


def test_running_it_again_labels_nothing_twice(session: Session, rt: Runtime, classifier: Classifier) -> None:
    add_mentions(session, TEXTS)
    assert classify_pending(rt, classifier) == 5
    assert classify_pending(rt, classifier) == 0
    assert len(classifications(session)) == 5


def test_two_workers_at_once_label_each_mention_exactly_once(
    session: Session, rt: Runtime, classifier: Classifier
) -> None:
    add_mentions(session, TEXTS * 4)
    done: list[int] = []
    workers = [
        threading.Thread(target=lambda: done.append(classify_pending(Runtime(rt.settings), classifier)))
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert sum(done) == 20
    assert len(classifications(session)) == 20


def test_it_leaves_mentions_another_worker_is_classifying(
    session: Session, rt: Runtime, classifier: Classifier
) -> None:
    ids = add_mentions(session, TEXTS)
    session.execute(
        update(Mention)
        .where(Mention.id == ids[0])
        .values(classify_claimed_by="other:1:abc", classify_claimed_at=datetime.now(UTC))
    )
    session.commit()
    assert classify_pending(rt, classifier) == 4
    assert [c.mention_id for c in classifications(session)] == ids[1:]


def test_a_failure_gives_the_claimed_mentions_back_and_stores_nothing(
    session: Session, rt: Runtime, classifier: Classifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_mentions(session, TEXTS)

    def broken(texts: object) -> None:
        raise RuntimeError("out of memory")

    monkeypatch.setattr(classifier, "predict", broken)
    with pytest.raises(RuntimeError):
        classify_pending(rt, classifier)
    assert classifications(session) == []
    assert session.scalar(select(func.count()).where(Mention.classify_claimed_by.is_not(None))) == 0


def test_reclassify_relabels_only_mentions_labelled_by_another_model_version(
    session: Session, rt: Runtime, classifier: Classifier
) -> None:
    ids = add_mentions(session, TEXTS)
    classify_pending(rt, classifier)
    session.execute(
        update(Classification)
        .where(Classification.mention_id.in_(ids[:2]))
        .values(model_version="old", threat=True, abusive=True, scores={})
    )
    session.commit()
    with rt.transaction() as s:
        assert count(s, stale(classifier)) == 2 and count(s, unclassified()) == 0
    assert classify_pending(rt, classifier) == 0
    assert classify_pending(rt, classifier, reclassify=True) == 2
    stored = classifications(session)
    assert {c.model_version for c in stored} == {classifier.version}
    expected = classifier.predict(TEXTS[:2])
    assert [tuple(c.labels) for c in stored[:2]] == [p.labels for p in expected]


def test_mentions_relabelled_by_reclassify_are_routed_again_and_no_others(
    session: Session, rt: Runtime, classifier: Classifier
) -> None:
    ids = add_mentions(session, TEXTS)
    classify_pending(rt, classifier)
    assert all(c.routing_pending for c in classifications(session))  # new labels: routing sees them
    session.execute(update(Classification).values(routing_pending=False))  # as routing leaves them
    session.execute(
        update(Classification).where(Classification.mention_id.in_(ids[:2])).values(model_version="old")
    )
    session.commit()
    assert classify_pending(rt, classifier, reclassify=True) == 2
    assert [c.mention_id for c in classifications(session) if c.routing_pending] == ids[:2]


def test_a_limit_stops_after_that_many_mentions(
    session: Session, rt: Runtime, classifier: Classifier
) -> None:
    add_mentions(session, TEXTS)
    assert classify_pending(rt, classifier, limit=3) == 3
    assert len(classifications(session)) == 3


def test_a_stop_request_ends_the_pass_after_the_batch_in_hand(
    session: Session, rt: Runtime, classifier: Classifier
) -> None:
    add_mentions(session, TEXTS)
    stop = threading.Event()
    assert classify_pending(rt, classifier, on_batch=lambda count: stop.set(), stop=stop) == 2
    assert len(classifications(session)) == 2  # the rest wait for the next start
    assert session.scalar(select(func.count()).where(Mention.classify_claimed_by.is_not(None))) == 0


def test_a_pipeline_pass_asked_to_stop_leaves_the_backlog_for_the_next_start(
    session: Session, rt: Runtime
) -> None:
    add_mentions(session, TEXTS)
    stopping = threading.Event()
    stopping.set()  # SIGTERM came while the pass was waiting to run
    assert run_pipeline(rt, stopping).classified == 0
    assert classifications(session) == []
