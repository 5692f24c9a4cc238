"""Labels set by a person: the case team correcting the model, and the corrections kept for training.

A false threat on a doctor's record misleads everyone who reads the digest, and a missed one is
the worst failure there is, so the case team can set a mention's labels themselves (``vigil
mentions label``). The model's scores stay beside them; the labels are marked as reviewed
(``model_id = "reviewed"``, ``model_version`` = who), and no later classification, not even
``vigil model reclassify`` after a new model, replaces them.

A correction is acted on like any relabel: routing sees it (a post now a threat is alerted at once
if it is still recent, ``alerts.threat_max_age_hours``; one that is no longer a threat alerts
nobody), case detection scans the mention again (a missed threat opens a case), and digests show
the labels as corrected. ``corrections`` gives them back in the corpus format, so the next model
can learn from them (``vigil model corrections``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from vigil.errors import VigilError
from vigil.labels import LABELS, REVIEWED
from vigil.models import Classification, Mention, storable_ids, utcnow

NAME_LENGTH = 64  # Classification.model_version holds who set them


@dataclass(frozen=True)
class Correction:
    mention_id: int
    before: tuple[str, ...]
    after: tuple[str, ...]


def parse_labels(text: str) -> tuple[str, ...]:
    """``"threat,abusive"`` as labels in their usual order; ``"none"`` for a neutral post."""
    given = {part.strip().lower() for part in text.split(",") if part.strip()}
    if given == {"none"}:
        return ()
    unknown = sorted(given - {*LABELS, "none"})
    if unknown or not given:
        raise VigilError(
            f"--labels: expected some of {', '.join(LABELS)} (comma-separated), or none;"
            f" got {', '.join(unknown) or 'nothing'}"
        )
    if "none" in given:
        given_labels = ", ".join(label for label in ("none", *LABELS) if label in given)
        raise VigilError(f"--labels: none means no label, so it stands alone; got {given_labels}")
    return tuple(label for label in LABELS if label in given)


def correct_labels(session: Session, ids: Sequence[int], labels: Iterable[str], by: str) -> list[Correction]:
    """Set these mentions' labels, as reviewed by ``by``, in the caller's transaction.

    Every id must name a stored mention (nothing changes otherwise). A mention the model has not
    labelled yet is labelled by the person alone; its scores are empty.
    """
    who = by.strip()
    if not who or len(who) > NAME_LENGTH:
        raise VigilError(f"--by: give who reviewed the labels, in at most {NAME_LENGTH} characters")
    chosen = tuple(label for label in LABELS if label in set(labels))
    found = set(session.scalars(select(Mention.id).where(Mention.id.in_(storable_ids(ids)))))
    missing = sorted(set(ids) - found)
    if missing:
        raise VigilError(f"no stored mention has the id(s) {', '.join(map(str, missing))}; nothing changed")
    # Hold the current labels until commit (PostgreSQL), so that ``before`` is what the person replaced.
    current = session.scalars(
        select(Classification)
        .where(Classification.mention_id.in_(found))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    before = {row.mention_id: tuple(row.labels) for row in current}
    write_reviewed(session, sorted(found), chosen, who)
    session.execute(
        update(Mention)
        .where(Mention.id.in_(found))
        .values(detected_at=None, detect_claimed_by=None, detect_claimed_at=None)
        .execution_options(synchronize_session=False)
    )
    return [Correction(mention_id, before.get(mention_id, ()), chosen) for mention_id in sorted(found)]


def write_reviewed(session: Session, ids: list[int], labels: tuple[str, ...], who: str) -> None:
    """An upsert, as the classify step's (``classifier.step.store``): a mention the model has not
    labelled yet may get its first labels from a batch stored at this very moment, and a plain
    insert would then fail on PostgreSQL. The person's labels replace the model's; its scores stay."""
    if not ids:
        return
    now = utcnow()
    rows = [
        {
            "mention_id": mention_id,
            "model_id": REVIEWED,
            "model_version": who,
            "scores": {},
            "classified_at": now,
            "routing_pending": True,  # routing acts on the new labels
            **{label: label in labels for label in LABELS},
        }
        for mention_id in ids
    ]
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = insert(Classification).values(rows)
    replaced = {key: statement.excluded[key] for key in rows[0] if key not in ("mention_id", "scores")}
    upsert = statement.on_conflict_do_update(index_elements=["mention_id"], set_=replaced)
    session.execute(upsert.returning(Classification), execution_options={"populate_existing": True}).all()


def corrections(session: Session) -> Iterator[dict[str, object]]:
    """Every reviewed mention as a corpus line (``{"text": ..., "labels": [...]}``), oldest first."""
    rows = session.execute(
        select(Mention.text, Classification)
        .join(Classification, Classification.mention_id == Mention.id)
        .where(Classification.model_id == REVIEWED)
        .order_by(Classification.classified_at, Mention.id)
        .execution_options(yield_per=500)
    )
    for text, classification in rows:
        yield {"text": text, "labels": classification.labels}
