"""Mentions as one recipient may see them in an email: scoped, cleaned, and ready for the templates.

Every mention shown to a recipient is loaded through ``visible_to`` and the names listed with it
through ``entity_in_scope``, here and nowhere else, so that an email can only ever contain what
its recipient may see, whatever the caller asked for.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from alerts.platforms import Platform, platform_for
from alerts.render import clean, local_time, oneline, percent, safe_url, shorten
from vigil.labels import LABELS, REVIEWED
from vigil.models import Classification, Doctor, Mention, MentionEntity, Practice, Recipient, Scope
from vigil.scope import entity_in_scope, visible_to

SNIPPET = 280
FOUND_LATE = timedelta(hours=1)  # found this long after it was posted, a post says when it was found

# How each label is named to people: plainly, and without claiming more certainty than a model has.
LABEL_TITLES = {
    "threat": "Possible threat",
    "abusive": "Abuse",
    "critical": "Criticism",
    "praise": "Praise",
    "neutral": "Other mentions",
    "unlabelled": "Not yet labelled",
}


@dataclass(frozen=True)
class MentionView:
    id: int
    platform: Platform
    url: str
    author: str
    posted: str
    created_at: datetime
    found: str  # when Vigil found it, if that was well after it was posted (a backfill, an import)
    text: str
    snippet: str
    labels: list[tuple[str, str]]
    names: list[str]
    labelled: bool
    reviewed: bool  # its labels were set by a person (classifier.review), not by the model

    @property
    def label_names(self) -> list[str]:
        return [label for label, _ in self.labels]

    @property
    def tags(self) -> list[str]:
        """``Possible threat 62%``: each label as people read it, with its score."""
        return [f"{LABEL_TITLES[label]} {score}" for label, score in self.labels]


def doctor_name(doctor: Doctor) -> str:
    return f"Dr {oneline(doctor.full_name)}"


def entity_name(doctor: Doctor | None, practice: Practice | None, with_practice: bool = True) -> str:
    """``Dr Amira Hassan (Alice Road Surgery)`` or ``Alice Road Surgery``."""
    if doctor is not None:
        if with_practice and doctor.practice is not None:
            return f"{doctor_name(doctor)} ({oneline(doctor.practice.name)})"
        return doctor_name(doctor)
    return oneline(practice.name) if practice is not None else ""


def scope_description(recipient: Recipient) -> str:
    """What a recipient watches, as the digest's introduction says it."""
    if recipient.scope is Scope.DOCTOR and recipient.doctor is not None:
        return doctor_name(recipient.doctor)
    if recipient.scope is Scope.PRACTICE and recipient.practice is not None:
        return f"{oneline(recipient.practice.name)} and its doctors"
    return "all member doctors and practices"


def mention_views(
    session: Session, recipient: Recipient, ids: Iterable[int], timezone: ZoneInfo
) -> list[MentionView]:
    """The given mentions that the recipient may see, in the given order, with in-scope names only."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return []
    mentions = {
        mention.id: mention
        for mention in session.scalars(
            select(Mention)
            .where(Mention.id.in_(wanted), visible_to(recipient))
            .options(selectinload(Mention.classification))
        )
    }
    names = _names_in_scope(session, recipient, list(mentions))
    return [_view(mentions[i], names[i], timezone) for i in wanted if i in mentions]


def _names_in_scope(session: Session, recipient: Recipient, ids: list[int]) -> dict[int, list[str]]:
    names: dict[int, list[str]] = defaultdict(list)
    entities = session.scalars(
        select(MentionEntity)
        .where(MentionEntity.mention_id.in_(ids), entity_in_scope(recipient))
        .options(
            selectinload(MentionEntity.doctor).selectinload(Doctor.practice),
            selectinload(MentionEntity.practice),
        )
        .order_by(MentionEntity.id)
    )
    with_practice = recipient.scope is not Scope.DOCTOR
    for entity in entities:
        name = entity_name(entity.doctor, entity.practice, with_practice)
        if name not in names[entity.mention_id]:
            names[entity.mention_id].append(name)
    return names


def labelled_by(mentions: Sequence[MentionView]) -> str:
    """Who set the labels an email shows: "model", "person" (on review) or "mixed", so that it says
    labels can be wrong of the model's alone. Posts that show no label count only if none does."""
    shown = [mention for mention in mentions if mention.labels] or mentions
    reviewed = sum(mention.reviewed for mention in shown)
    if not reviewed:
        return "model"
    return "person" if reviewed == len(shown) else "mixed"


def _reviewed(classification: Classification | None) -> bool:
    return classification is not None and classification.model_id == REVIEWED


def _confidence(classification: Classification | None, scores: dict[str, float], label: str) -> str:
    """The model's score, or "(reviewed)" where a person set the labels: the model's score for a
    label it did not give would mislead."""
    if _reviewed(classification):
        return "(reviewed)"
    return percent(scores.get(label))


def _view(mention: Mention, names: list[str], timezone: ZoneInfo) -> MentionView:
    classification = mention.classification
    scores = classification.scores if classification is not None else {}
    labels = classification.labels if classification is not None else []
    text = clean(mention.text)
    return MentionView(
        id=mention.id,
        platform=platform_for(mention.source),
        url=safe_url(mention.url),
        author=oneline(mention.author, 100),
        posted=local_time(mention.created_at, timezone),
        created_at=mention.created_at,
        found=local_time(mention.collected_at, timezone)
        if mention.collected_at - mention.created_at > FOUND_LATE
        else "",
        text=text,
        snippet=shorten(clean(mention.text, single_line=True), SNIPPET),
        labels=[(label, _confidence(classification, scores, label)) for label in LABELS if label in labels],
        names=names,
        labelled=classification is not None,
        reviewed=_reviewed(classification),
    )
