"""The pipeline step: claim mentions, label them, store the labels with every score and the model.

Each batch is claimed with one conditional UPDATE (``vigil.claims``), classified outside any
transaction, and stored and released in one commit, so running the step twice at once (or on two
workers) labels each mention once, and a crash loses at most one batch's work, which the next run
takes over when its claim goes stale.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from classifier.model import Classifier, Prediction
from vigil.claims import claim, release
from vigil.labels import LABELS, REVIEWED
from vigil.models import Classification, Mention, utcnow
from vigil.runtime import Runtime

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=15)


def unclassified() -> ColumnElement[bool]:
    return ~Mention.classification.has()


def stale(classifier: Classifier) -> ColumnElement[bool]:
    """Mentions without labels from exactly this model and version, nor labels a person set."""
    return ~Mention.classification.has(
        or_(
            and_(
                Classification.model_id == classifier.model_id,
                Classification.model_version == classifier.version,
            ),
            Classification.model_id == REVIEWED,
        )
    )


def count(session: Session, pending: ColumnElement[bool]) -> int:
    return session.scalar(select(func.count()).select_from(Mention).where(pending)) or 0


def classify_pending(
    runtime: Runtime,
    classifier: Classifier,
    *,
    reclassify: bool = False,
    limit: int | None = None,
    on_batch: Callable[[int], None] | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Label unclassified mentions (with ``reclassify``, also those labelled by another model or version).

    Returns how many mentions this call labelled. Once ``stop`` is set it returns after the batch in
    hand, so that stopping ``vigil run`` never waits for a whole backlog to be classified.
    """
    pending = stale(classifier) if reclassify else unclassified()
    size = runtime.settings.classifier.claim_size
    done = 0
    while limit is None or done < limit:
        if stop is not None and stop.is_set():
            break  # the rest waits for the next start
        with runtime.transaction() as session:
            token, ids = claim(
                session,
                Mention,
                pending=pending,
                claimed_by=Mention.classify_claimed_by,
                claimed_at=Mention.classify_claimed_at,
                limit=size if limit is None else min(size, limit - done),
                lease=LEASE,
            )
            query = select(Mention.id, Mention.text).where(Mention.id.in_(ids))
            texts: dict[int, str] = {row.id: row.text for row in session.execute(query)}
        if not ids:
            break
        try:
            predictions = classifier.predict([texts[i] for i in ids])
        except Exception:
            with runtime.transaction() as session:
                release(session, Mention, ids, Mention.classify_claimed_by, Mention.classify_claimed_at)
            raise
        with runtime.transaction() as session:
            store(session, classifier, dict(zip(ids, predictions, strict=True)), token)
        done += len(ids)
        log.info(
            "classified mentions",
            extra={"count": len(ids), "model": classifier.model_id, "version": classifier.version},
        )
        if on_batch:
            on_batch(len(ids))
    return done


def store(session: Session, classifier: Classifier, predictions: dict[int, Prediction], token: str) -> None:
    """Write (or replace) the labels and release this worker's claim, in the caller's transaction;
    labels a person set (``classifier.review``) are never replaced."""
    if not predictions:
        return
    now = utcnow()
    rows = [
        {
            "mention_id": mention_id,
            "model_id": classifier.model_id,
            "model_version": classifier.version,
            "scores": prediction.scores,
            "classified_at": now,
            "routing_pending": True,  # new labels: routing sees them (the update sets it too)
            **{label: label in prediction.labels for label in LABELS},
        }
        for mention_id, prediction in predictions.items()
    ]
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(Classification).values(rows)
    replaced = {key: statement.excluded[key] for key in rows[0] if key != "mention_id"}
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["mention_id"],
            set_=replaced,
            where=Classification.model_id != REVIEWED,  # a person set them meanwhile
        )
    )
    session.execute(
        update(Mention)
        .where(Mention.id.in_(list(predictions)), Mention.classify_claimed_by == token)
        .values(classify_claimed_by=None, classify_claimed_at=None)
        .execution_options(synchronize_session=False)
    )
