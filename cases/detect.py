"""Detection: one pass over newly classified mentions that opens or feeds cases.

A pass claims classified mentions not yet scanned (a conditional UPDATE, see ``vigil.claims``), so
two passes at once, or on two workers, never scan the same mention. For every entity named by a
new flagged mention (threat, abusive or critical) it then:

* feeds the entity's open cases with the new mentions;
* opens a **threat** case for any threat;
* opens a **pile-on** case when ``pile_on_authors`` distinct authors posted flagged mentions about
  it within ``pile_on_hours``, and that is unusual for it (``pile_on_max_p``);
* opens a **spike** case when the distinct authors of flagged mentions in the last
  ``spike_window_hours`` are at least ``spike_min_authors`` and that many would happen by chance
  less often than ``spike_max_p`` under the entity's own history (see ``cases.counts``).

Across all entities, a **campaign** is near-identical wording (``cases.fingerprint``), or one
author, posting flagged mentions about at least ``campaign_min_entities`` doctors or practices of
at least ``campaign_min_practices`` practices in ``campaign_days``.

Rules are evaluated at the posting times of the new mentions (not only at "now"), so a mention
collected late still completes the window it belongs to. Mentions that are evidence of a closed
case are not counted again for that reason: closing a case does not make it reopen at once.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Engine, false, func, or_, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from cases.counts import Surprise, surprise
from cases.fingerprint import normalise, shared_index
from cases.workflow import (
    SYSTEM_ACTOR,
    EntityRef,
    Finding,
    author_key,
    entity_names,
    entity_ref,
    evidence_summary,
    feed,
    open_cases_for,
    open_or_feed,
    raise_severity,
    record,
    still_open,
)
from vigil.claims import claim, release
from vigil.db import transaction
from vigil.labels import FLAGGED
from vigil.models import (
    Case,
    CaseEntity,
    CaseEvent,
    CaseMention,
    CaseReason,
    CaseStatus,
    Classification,
    Doctor,
    Mention,
    MentionEntity,
    Severity,
    utcnow,
)
from vigil.settings import Settings, SettingsError

log = logging.getLogger(__name__)
SCAN_ATTEMPTS = 3
ENTITY_REASONS = (CaseReason.THREAT, CaseReason.PILE_ON, CaseReason.SPIKE)
# Reasons that describe the same situation when they share evidence: one case, not two.
KINDRED: dict[CaseReason, tuple[CaseReason, ...]] = {
    CaseReason.THREAT: (CaseReason.THREAT,),
    CaseReason.PILE_ON: (CaseReason.PILE_ON, CaseReason.SPIKE),
    CaseReason.SPIKE: (CaseReason.SPIKE, CaseReason.PILE_ON),
    CaseReason.CAMPAIGN: (CaseReason.CAMPAIGN,),
}
Notify = Callable[[Session, Case, str], None]
"""Called in the pass's transaction with a case and ``"opened"``, ``"severity"`` (it rose) or
``"threat-{mention id}"`` (a new threat joined the open case)."""


@dataclass(frozen=True)
class DetectionSettings:
    """The ``[cases]`` settings detection uses, read once."""

    batch_size: int
    max_age: timedelta
    threat_max_age: timedelta
    spike_window: timedelta
    spike_history: timedelta
    spike_min_authors: int
    spike_max_p: float
    spike_prior_per_day: float
    spike_prior_days: float
    pile_on_authors: int
    pile_on_span: timedelta
    pile_on_max_p: float
    campaign_window: timedelta
    campaign_min_entities: int
    campaign_min_practices: int
    campaign_author_labels: frozenset[str]
    campaign_similarity: float
    campaign_min_words: int

    @classmethod
    def from_settings(cls, settings: Settings) -> DetectionSettings:
        s = settings.cases
        return cls(
            batch_size=s.batch_size,
            max_age=timedelta(hours=s.max_age_hours),
            threat_max_age=timedelta(hours=max(s.threat_max_age_hours, s.max_age_hours)),
            spike_window=timedelta(hours=s.spike_window_hours),
            spike_history=timedelta(days=s.spike_history_days),
            spike_min_authors=s.spike_min_authors,
            spike_max_p=s.spike_max_p,
            spike_prior_per_day=s.spike_prior_per_day,
            spike_prior_days=s.spike_prior_days,
            pile_on_authors=s.pile_on_authors,
            pile_on_span=timedelta(hours=s.pile_on_hours),
            pile_on_max_p=s.pile_on_max_p,
            campaign_window=timedelta(days=s.campaign_days),
            campaign_min_entities=s.campaign_min_entities,
            campaign_min_practices=s.campaign_min_practices,
            campaign_author_labels=flagged_labels("cases.campaign_author_labels", s.campaign_author_labels),
            campaign_similarity=s.campaign_similarity,
            campaign_min_words=s.campaign_min_words,
        )

    @property
    def entity_lookback(self) -> timedelta:
        """How far before a new mention the per-entity rules look (window plus history)."""
        return max(self.spike_window, self.pile_on_span) + self.spike_history


def flagged_labels(path: str, labels: Iterable[str]) -> frozenset[str]:
    unknown = sorted(set(labels) - set(FLAGGED))
    if unknown or not labels:
        got = ", ".join(unknown) or "none"
        raise SettingsError(f"setting {path}: expected some of {', '.join(FLAGGED)}, got {got}")
    return frozenset(labels)


@dataclass(frozen=True)
class Flagged:
    """A flagged mention as the rules see it."""

    id: int
    created_at: datetime
    author: str
    labels: frozenset[str]
    text: str
    entities: frozenset[EntityRef]
    names: tuple[str, ...]
    # When Vigil linked the post to each entity: when it found the post about them.
    linked_at: Mapping[EntityRef, datetime] = field(default_factory=dict, compare=False)

    @property
    def threat(self) -> bool:
        return "threat" in self.labels

    def lateness(self, entity: EntityRef) -> timedelta:
        """How old the post was when Vigil found it about ``entity`` (a post linked today to a
        doctor registered today is old news about them)."""
        return self.linked_at[entity] - self.created_at


@dataclass
class PassReport:
    scanned: int = 0
    flagged: int = 0
    opened: list[int] = field(default_factory=list)
    fed: set[int] = field(default_factory=set)

    def add(self, other: PassReport) -> None:
        self.scanned += other.scanned
        self.flagged += other.flagged
        self.opened += other.opened
        self.fed |= other.fed

    def __str__(self) -> str:
        return (
            f"{self.scanned} mentions scanned ({self.flagged} flagged), {len(self.opened)} cases opened,"
            f" {len(self.fed)} fed with new evidence"
        )


def detect(
    engine: Engine,
    config: DetectionSettings,
    now: datetime | None = None,
    notify: Notify | None = None,
    progress: Callable[[int], None] | None = None,
) -> PassReport:
    """Scan everything classified and not yet scanned, batch by batch; one report for all."""
    total = PassReport()
    while (report := detect_pass(engine, config, now, notify)).scanned:
        total.add(report)
        if progress is not None:
            progress(report.scanned)
    return total


def detect_pass(
    engine: Engine, config: DetectionSettings, now: datetime | None = None, notify: Notify | None = None
) -> PassReport:
    """Claim one batch of classified mentions (and commit the claim), then scan it in one transaction.

    The claim is committed first so that this pass holds no row locks on mentions while it links
    them as evidence (on PostgreSQL those locks would deadlock two passes that link each other's
    mentions). If the scan fails it rolls back whole: its cases, its evidence and its scan marks.
    A deadlock is retried; any other failure gives the batch back and is raised.
    """
    now = now or utcnow()
    with transaction(engine) as session:
        token, ids = claim_batch(session, config)
    if not ids:
        return PassReport()
    for attempt in range(1, SCAN_ATTEMPTS + 1):
        try:
            with transaction(engine) as session:
                return scan(session, token, ids, config, now, notify)
        except OperationalError as error:
            if attempt < SCAN_ATTEMPTS and _is_deadlock(error):
                log.warning("detection pass deadlocked with another; retrying (%d)", attempt)
                continue
            _release(engine, ids)
            raise
        except Exception:
            _release(engine, ids)
            raise
    raise AssertionError("unreachable")


def pending_count(session: Session) -> int:
    """Classified mentions no pass has scanned yet."""
    waiting = Mention.detected_at.is_(None) & Mention.classification.has()
    return session.scalar(select(func.count()).select_from(Mention).where(waiting)) or 0


def claim_batch(session: Session, config: DetectionSettings) -> tuple[str, list[int]]:
    return claim(
        session,
        Mention,
        pending=Mention.detected_at.is_(None) & Mention.classification.has(),
        claimed_by=Mention.detect_claimed_by,
        claimed_at=Mention.detect_claimed_at,
        limit=config.batch_size,
    )


def scan(
    session: Session,
    token: str,
    ids: list[int],
    config: DetectionSettings,
    now: datetime,
    notify: Notify | None = None,
) -> PassReport:
    """Apply every rule to claimed mentions and mark them scanned (the caller commits)."""
    report = PassReport(scanned=len(ids))
    new = load_flagged(session, Mention.id.in_(ids))
    report.flagged = len(new)
    if new:
        pass_ = _Pass(session, config, now, notify or (lambda *_: None), report)
        pass_.run_entity_rules(list(new.values()))
        pass_.run_campaign_rule(list(new.values()))
    session.execute(
        update(Mention)
        .where(Mention.id.in_(ids), Mention.detect_claimed_by == token)
        .values(detected_at=now)
        .execution_options(synchronize_session=False)
    )
    return report


def _is_deadlock(error: OperationalError) -> bool:
    return getattr(error.orig, "sqlstate", None) in ("40P01", "40001")


def _release(engine: Engine, ids: list[int]) -> None:
    with transaction(engine) as session:
        release(session, Mention, ids, Mention.detect_claimed_by, Mention.detect_claimed_at)


def flagged_condition() -> ColumnElement[bool]:
    return or_(*(getattr(Classification, label).is_(True) for label in FLAGGED))


def load_flagged(session: Session, *conditions: ColumnElement[bool]) -> dict[int, Flagged]:
    """Flagged mentions matching the conditions, with the entities they name (all of them)."""
    named = select(MentionEntity.mention_id).join(Mention).where(*conditions)
    rows = session.execute(
        select(
            Mention.id,
            Mention.created_at,
            Mention.source,
            Mention.author,
            Mention.author_id,
            Mention.text,
            *(getattr(Classification, label) for label in FLAGGED),
            MentionEntity.doctor_id,
            MentionEntity.practice_id,
            MentionEntity.matched_text,
            MentionEntity.linked_at,
        )
        .join(Classification, Classification.mention_id == Mention.id)
        .join(MentionEntity, MentionEntity.mention_id == Mention.id)
        .where(flagged_condition(), Mention.id.in_(named))
        .order_by(Mention.created_at, Mention.id)
    ).all()
    named_by: dict[int, list[tuple[EntityRef, str, datetime]]] = defaultdict(list)
    first: dict[int, Any] = {}
    for row in rows:
        named_by[row.id].append((entity_ref(row.doctor_id, row.practice_id), row.matched_text, row.linked_at))
        first.setdefault(row.id, row)
    return {
        key: Flagged(
            id=row.id,
            created_at=row.created_at,
            author=author_key(row.id, row.source, row.author, row.author_id),
            labels=frozenset(label for label in FLAGGED if getattr(row, label)),
            text=row.text,
            entities=frozenset(entity for entity, _, _ in named_by[key]),
            names=tuple(name for _, name, _ in named_by[key]),
            linked_at={entity: linked_at for entity, _, linked_at in named_by[key]},
        )
        for key, row in first.items()
    }


def entity_condition(
    entities: Iterable[EntityRef], model: type[MentionEntity] | type[CaseEntity]
) -> ColumnElement[bool]:
    doctors = [key for kind, key in entities if kind == "doctor"]
    practices = [key for kind, key in entities if kind == "practice"]
    return or_(
        model.doctor_id.in_(doctors) if doctors else false(),
        model.practice_id.in_(practices) if practices else false(),
    )


class _Pass:
    """The state one detection pass shares between rules."""

    def __init__(
        self, session: Session, config: DetectionSettings, now: datetime, notify: Notify, report: PassReport
    ) -> None:
        self.session, self.config, self.now, self.notify, self.report = session, config, now, notify, report

    def fresh(
        self, mentions: Iterable[Flagged], entity: EntityRef | None = None, reason: CaseReason | None = None
    ) -> list[Flagged]:
        """Mentions young enough to open cases (older ones, from a backfill, only feed open cases).

        A threat is judged by its age when found, and has longer (``threat_max_age``): a threat
        found late may still be live, and one found in time but scanned late (detection was down)
        is news nobody has had. Pile-ons, spikes and campaigns are judged by their age now, since
        they are about what is happening now."""
        if reason is CaseReason.THREAT and entity is not None:
            return [m for m in mentions if m.lateness(entity) <= self.config.threat_max_age]
        return [m for m in mentions if m.created_at >= self.now - self.config.max_age]

    # -- per entity --------------------------------------------------------------------------

    def run_entity_rules(self, new: list[Flagged]) -> None:
        by_entity: dict[EntityRef, list[Flagged]] = defaultdict(list)
        for mention in new:
            for entity in mention.entities:
                by_entity[entity].append(mention)
        since = min(m.created_at for m in new) - self.config.entity_lookback
        recent = load_flagged(
            self.session, Mention.created_at > since, entity_condition(by_entity, MentionEntity)
        )
        recent_by_entity: dict[EntityRef, list[Flagged]] = defaultdict(list)
        for mention in recent.values():
            for entity in mention.entities & by_entity.keys():
                recent_by_entity[entity].append(mention)
        consumed = self.consumed(by_entity, since)
        names = entity_names(self.session, by_entity)
        for entity, mentions in sorted(by_entity.items()):
            self.run_for_entity(
                entity,
                names.get(entity, f"{entity[0]} {entity[1]}"),
                mentions,
                recent_by_entity[entity],
                consumed,
            )

    def run_for_entity(
        self,
        entity: EntityRef,
        name: str,
        new: list[Flagged],
        recent: list[Flagged],
        consumed: dict[tuple[CaseReason, EntityRef], set[int]],
    ) -> None:
        open_reasons = set()
        for case in open_cases_for_entity(self.session, entity):
            open_reasons.add(case.reason)
            self.give(case, Finding(case.reason, [entity], [m.id for m in new], case.severity, case.title))
        for reason in ENTITY_REASONS:
            spent = consumed.get((reason, entity), set())
            # A mention scanned again (it named someone new) is not new evidence of a closed case.
            unspent = [m for m in self.fresh(new, entity, reason) if m.id not in spent]
            if reason in open_reasons or not unspent:
                continue
            pool = [m for m in recent if m.id not in spent]
            finding = RULES[reason](self.config, entity, name, unspent, pool, recent)
            if finding is not None:
                self.open(finding)

    def consumed(
        self, entities: Iterable[EntityRef], since: datetime
    ) -> dict[tuple[CaseReason, EntityRef], set[int]]:
        """Evidence of closed cases, per reason (and its kin) and entity: it opens no new case."""
        rows = self.session.execute(
            select(Case.reason, CaseEntity.doctor_id, CaseEntity.practice_id, CaseMention.mention_id)
            .join(CaseEntity, CaseEntity.case_id == Case.id)
            .join(CaseMention, CaseMention.case_id == Case.id)
            .join(Mention, Mention.id == CaseMention.mention_id)
            .where(
                Case.status == CaseStatus.CLOSED,
                Mention.created_at > since,
                entity_condition(entities, CaseEntity),
            )
        ).all()
        consumed: dict[tuple[CaseReason, EntityRef], set[int]] = defaultdict(set)
        for reason, doctor_id, practice_id, mention_id in rows:
            for kin in KINDRED[reason]:
                consumed[kin, entity_ref(doctor_id, practice_id)].add(mention_id)
        return consumed

    # -- campaigns ---------------------------------------------------------------------------

    def run_campaign_rule(self, new: list[Flagged]) -> None:
        fresh = self.fresh(new)
        if not fresh:
            return
        since = self.now - self.config.campaign_window
        closed = (
            select(CaseMention.mention_id)
            .join(Case)
            .where(Case.reason == CaseReason.CAMPAIGN, Case.status == CaseStatus.CLOSED)
        )
        pool = load_flagged(self.session, Mention.created_at > since, Mention.id.not_in(closed))
        practices = practice_of(self.session, {e for m in pool.values() for e in m.entities})
        for finding in campaign_findings(pool, fresh, practices, self.config):
            if qualifies(finding, self.config):
                members = members_of(finding.entities, practices)
                names = entity_names(self.session, members)
                finding.title = campaign_title(finding, [names.get(e, str(e)) for e in members])
                self.open(finding)
            elif (case := self.case_sharing_evidence(finding)) is not None:
                self.give(case, finding)

    def case_sharing_evidence(self, finding: Finding) -> Case | None:
        """The open case of a kindred reason that already holds this evidence (most of it, or for a
        campaign any of it): a doctor and their practice named in the same posts make one case, and
        so does a pile-on that is also a spike. A case a handler has closed meanwhile is none."""
        shared = func.count().label("shared")
        row = self.session.execute(
            select(CaseMention.case_id, shared)
            .join(Case)
            .where(Case.reason.in_(KINDRED[finding.reason]), Case.status != CaseStatus.CLOSED)
            .where(CaseMention.mention_id.in_(finding.evidence))
            .group_by(CaseMention.case_id)
            .order_by(shared.desc(), CaseMention.case_id)
            .limit(1)
        ).first()
        needed = 1 if finding.reason is CaseReason.CAMPAIGN else (len(finding.evidence) + 1) // 2
        if row is None or row.shared < needed:
            return None
        case = self.session.get(Case, row.case_id)
        return case if case is not None and still_open(self.session, case) else None

    # -- opening and feeding -----------------------------------------------------------------

    def open(self, finding: Finding) -> None:
        sharing = self.case_sharing_evidence(finding)
        if sharing is not None:
            self.give(sharing, finding)
            return
        case, opened = open_or_feed(self.session, finding, self.now)
        if opened:
            self.report.opened.append(case.id)
            log.info(
                "case %s opened: %s",
                case.id,
                case.title,
                extra={"case_id": case.id, "reason": str(case.reason), "severity": str(case.severity)},
            )
            self.notify(self.session, case, "opened")
        else:
            self.reassess(case)

    def give(self, case: Case, finding: Finding) -> None:
        if finding.reason != case.reason and not has_finding(self.session, case, finding.reason):
            record(
                self.session,
                case,
                "finding",
                SYSTEM_ACTOR,
                self.now,
                new_value=finding.reason,
                note=finding.title,
            )
        added = feed(self.session, case, finding, self.now)
        if not added:
            return
        self.report.fed.add(case.id)
        rose = self.reassess(case)
        if not rose and (threats := new_threats(self.session, added)):
            # A threat is the one post the case team must read at once, even when the case it joins
            # is already critical and being handled (a severity rise says so itself).
            self.notify(self.session, case, f"threat-{max(threats)}")

    def reassess(self, case: Case) -> bool:
        """Raise the case's severity if its evidence calls for it, and say so; return whether it rose.

        A pile-on or spike is as severe as its busiest window (the rule's own), not as all the
        posts fed to it while it stayed open: at a busy practice ordinary critics would otherwise
        make any open pile-on "high" within days.
        """
        threats = evidence_summary(self.session, case.id)["threats"]
        authors = members = 0
        if case.reason is CaseReason.CAMPAIGN:
            entities = [entity_ref(row.doctor_id, row.practice_id) for row in case.entities]
            members = len(members_of(entities, practice_of(self.session, entities)))
        else:
            span = self.config.spike_window if case.reason is CaseReason.SPIKE else self.config.pile_on_span
            authors = peak_authors(evidence_authors(self.session, case.id), span)
        severity = assess(case.reason, authors, members, threats, self.config)
        if raise_severity(self.session, case, severity, self.now):
            self.notify(self.session, case, "severity")
            return True
        return False


def new_threats(session: Session, mention_ids: Iterable[int]) -> list[int]:
    """The mentions among these labelled a threat."""
    query = select(Classification.mention_id).where(
        Classification.mention_id.in_(list(mention_ids)), Classification.threat.is_(True)
    )
    return list(session.scalars(query))


def evidence_authors(session: Session, case_id: int) -> list[tuple[datetime, str]]:
    """When each post of the case's evidence was posted, and by whom (``author_key``)."""
    rows = session.execute(
        select(Mention.id, Mention.created_at, Mention.source, Mention.author, Mention.author_id)
        .join(CaseMention, CaseMention.mention_id == Mention.id)
        .where(CaseMention.case_id == case_id)
    ).all()
    return [(r.created_at, author_key(r.id, r.source, r.author, r.author_id)) for r in rows]


def peak_authors(posts: Iterable[tuple[datetime, str]], span: timedelta) -> int:
    """The most distinct authors within any one ``span``, counted inclusively as the rules count
    them ("within 6 hours" includes posts exactly 6 hours apart)."""
    ordered = sorted(posts)
    inside: Counter[str] = Counter()
    peak = first = 0
    for at, author in ordered:
        inside[author] += 1
        while ordered[first][0] < at - span:
            gone = ordered[first][1]
            inside[gone] -= 1
            if not inside[gone]:
                del inside[gone]
            first += 1
        peak = max(peak, len(inside))
    return peak


def members_of(entities: Iterable[EntityRef], practices: Mapping[EntityRef, EntityRef]) -> list[EntityRef]:
    """Members as the case team counts them: each doctor, and each practice none of whose doctors
    is named too. A post naming "Dr A at X Surgery" is about one member, not two (``practices``
    maps a doctor to their practice, as ``practice_of`` does)."""
    entities = list(dict.fromkeys(entities))
    covered = {practices.get(e, e) for e in entities if e[0] == "doctor"}
    return [e for e in entities if e[0] == "doctor" or e not in covered]


def has_finding(session: Session, case: Case, reason: CaseReason) -> bool:
    query = select(CaseEvent.id).where(
        CaseEvent.case_id == case.id, CaseEvent.action == "finding", CaseEvent.new_value == reason
    )
    return session.scalar(query.limit(1)) is not None


def open_cases_for_entity(session: Session, entity: EntityRef) -> list[Case]:
    """The entity's open cases, each locked and checked (``still_open``): one a handler closed
    since this pass began is not fed, and its reason may open a new case."""
    cases: list[Case] = []
    for reason in ENTITY_REASONS:
        cases.extend(case for case in open_cases_for(session, reason, [entity]) if still_open(session, case))
    return cases


def assess(
    reason: CaseReason, authors: int, members: int, threats: int, config: DetectionSettings
) -> Severity:
    """How urgent a case is: any threat is critical; a pile-on or spike of twice the pile-on
    threshold of accounts in its window, or a campaign across twice the minimum of members
    (``members_of``), is high."""
    if reason is CaseReason.THREAT or threats:
        return Severity.CRITICAL
    if reason is CaseReason.CAMPAIGN:
        return Severity.HIGH if members >= 2 * config.campaign_min_entities else Severity.MEDIUM
    return Severity.HIGH if authors >= 2 * config.pile_on_authors else Severity.MEDIUM


# -- the rules ---------------------------------------------------------------------------------

Rule = Callable[
    [DetectionSettings, EntityRef, str, list[Flagged], list[Flagged], list[Flagged]], Finding | None
]


def threat_rule(
    config: DetectionSettings,
    entity: EntityRef,
    name: str,
    fresh: list[Flagged],
    pool: list[Flagged],
    history: list[Flagged],
) -> Finding | None:
    """Any threat opens a case at once."""
    threats = [m for m in fresh if m.threat]
    if not threats:
        return None
    authors = {m.author for m in threats}
    return Finding(
        CaseReason.THREAT,
        [entity],
        [m.id for m in threats],
        Severity.CRITICAL,
        f"Possible threat against {name}",
        {"threats": len(threats), "authors": len(authors), "first_at": threats[0].created_at.isoformat()},
    )


def evaluation_ends(fresh: list[Flagged], pool: list[Flagged]) -> list[datetime]:
    """The moments to evaluate a window rule at: each flagged post from the first new one on."""
    start = min(m.created_at for m in fresh)
    return sorted({m.created_at for m in pool if m.created_at >= start})


def authors_between(pool: list[Flagged], start: datetime, end: datetime) -> set[str]:
    """Authors who posted in [start, end]: "within 6 hours" includes posts exactly 6 hours apart."""
    return {m.author for m in pool if start <= m.created_at <= end}


PILE_ON_TITLE = "Pile-on: {authors} accounts within {hours:g} h about {name}"
SPIKE_TITLE = "Spike: {authors} accounts in {hours:g} h about {name} (usually {expected:.2g})"


def pile_on_rule(
    config: DetectionSettings,
    entity: EntityRef,
    name: str,
    fresh: list[Flagged],
    pool: list[Flagged],
    history: list[Flagged],
) -> Finding | None:
    """At least ``pile_on_authors`` distinct authors of flagged mentions within ``pile_on_hours``,
    and more than the entity's own history makes plausible for so short a span (at a busy practice
    five critics in six hours can be an ordinary Monday)."""
    window = WindowRule(CaseReason.PILE_ON, config.pile_on_span, config.pile_on_authors, config.pile_on_max_p)
    return window.find(config, entity, name, fresh, pool, history, PILE_ON_TITLE)


def spike_rule(
    config: DetectionSettings,
    entity: EntityRef,
    name: str,
    fresh: list[Flagged],
    pool: list[Flagged],
    history: list[Flagged],
) -> Finding | None:
    """More authors of flagged mentions in one window than the entity's history makes plausible."""
    window = WindowRule(CaseReason.SPIKE, config.spike_window, config.spike_min_authors, config.spike_max_p)
    return window.find(config, entity, name, fresh, pool, history, SPIKE_TITLE)


@dataclass(frozen=True)
class WindowRule:
    """Enough distinct authors in a window, and more than the entity's history makes plausible."""

    reason: CaseReason
    window: timedelta
    min_authors: int
    max_p: float

    def find(
        self,
        config: DetectionSettings,
        entity: EntityRef,
        name: str,
        fresh: list[Flagged],
        pool: list[Flagged],
        history: list[Flagged],
        title: str,
    ) -> Finding | None:
        hours = self.window.total_seconds() / 3600
        for end in evaluation_ends(fresh, pool):
            authors = len(authors_between(pool, end - self.window, end))
            if authors < self.min_authors:
                continue
            chance = chance_of(config, authors, history, end, self.window)
            if chance.tail > self.max_p:
                continue
            evidence = [m for m in pool if m.created_at >= end - self.window]
            return Finding(
                self.reason,
                [entity],
                [m.id for m in evidence],
                assess(self.reason, authors, 1, sum(m.threat for m in evidence), config),
                title.format(authors=authors, hours=hours, expected=chance.expected, name=name),
                {
                    "authors": authors,
                    "hours": hours,
                    "window_end": end.isoformat(),
                    "expected": round(chance.expected, 4),
                    "tail_probability": chance.tail,
                },
            )
        return None


def chance_of(
    config: DetectionSettings, authors: int, history: list[Flagged], end: datetime, window: timedelta
) -> Surprise:
    """How surprising ``authors`` in the window ending at ``end`` are, given the history before it."""
    windows_per_day = timedelta(days=1) / window
    start = end - window
    return surprise(
        authors,
        usual_authors(history, start - config.spike_history, start, window),
        history_windows=config.spike_history / window,
        prior_per_window=config.spike_prior_per_day / windows_per_day,
        prior_windows=config.spike_prior_days * windows_per_day,
    )


def usual_authors(history: list[Flagged], start: datetime, end: datetime, window: timedelta) -> int:
    """Authors in the history, each counted once per window-sized slice (as in the window itself)."""
    return len({((end - m.created_at) // window, m.author) for m in history if start <= m.created_at < end})


RULES: dict[CaseReason, Rule] = {
    CaseReason.THREAT: threat_rule,
    CaseReason.PILE_ON: pile_on_rule,
    CaseReason.SPIKE: spike_rule,
}


def practice_of(session: Session, entities: Iterable[EntityRef]) -> dict[EntityRef, EntityRef]:
    """The practice each entity belongs to: a practice is its own, a doctor without one is alone."""
    doctors = [key for kind, key in entities if kind == "doctor"]
    found: dict[EntityRef, EntityRef] = {e: e for e in entities}
    rows = session.execute(select(Doctor.id, Doctor.practice_id).where(Doctor.id.in_(doctors))).all()
    for doctor_id, practice_id in rows:
        if practice_id is not None:
            found["doctor", doctor_id] = ("practice", practice_id)
    return found


def campaign_findings(
    pool: dict[int, Flagged],
    fresh: list[Flagged],
    practices: dict[EntityRef, EntityRef],
    config: DetectionSettings,
) -> Iterator[Finding]:
    """Groups of flagged posts around each new one: its near-identical copies, and its author's posts.

    Groups are yielded whether or not they are large enough to open a case: a small group that
    shares a post with an open campaign case still feeds it.
    """
    texts = {m.id: normalise(m.text, m.names) for m in pool.values()}
    copies = shared_index(config.campaign_similarity, config.campaign_min_words).near_copies(
        texts, [m.id for m in fresh]
    )
    by_author: dict[str, list[int]] = defaultdict(list)
    for mention in pool.values():
        if not mention.author.startswith("mention:") and mention.labels & config.campaign_author_labels:
            by_author[mention.author].append(mention.id)
    seen: set[frozenset[int]] = set()
    for mention in fresh:
        if mention.id not in pool:
            continue
        groups = [
            ("wording", {mention.id} | copies.get(mention.id, set())),
            ("author", set(by_author.get(mention.author, ()))),
        ]
        for kind, ids in groups:
            if len(ids) < 2 or frozenset(ids) in seen:
                continue
            seen.add(frozenset(ids))
            members = sorted((pool[i] for i in ids), key=lambda m: (m.created_at, m.id))
            entities = sorted(set().union(*(m.entities for m in members)))
            yield Finding(
                CaseReason.CAMPAIGN,
                entities,
                [m.id for m in members],
                assess(
                    CaseReason.CAMPAIGN,
                    0,
                    len(members_of(entities, practices)),
                    sum(m.threat for m in members),
                    config,
                ),
                "",
                {
                    "kind": kind,
                    "posts": len(members),
                    "entities": len(members_of(entities, practices)),  # members, as the title counts them
                    "practices": len({practices.get(e, e) for e in entities}),
                    "authors": len({m.author for m in members}),
                    "first_at": members[0].created_at.isoformat(),
                },
            )


def qualifies(finding: Finding, config: DetectionSettings) -> bool:
    """Enough posts about enough members, across enough practices, to be more than one practice's
    matter (which its own spike and pile-on rules see)."""
    enough = min(len(finding.evidence), len(finding.entities)) >= config.campaign_min_entities
    return enough and finding.details["practices"] >= config.campaign_min_practices


def campaign_title(finding: Finding, names: list[str]) -> str:
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    how = "near-identical posts" if finding.details["kind"] == "wording" else "posts by one account"
    return f"Campaign: {finding.details['posts']} {how} about {len(names)} members ({shown})"
