"""Evaluation: a synthetic month of traffic with planted events, replayed through real detection.

The scenario (seeded, so every run is the same) has a register of practices and doctors, a month
of background posts after some weeks of history, and planted events. Background: most doctors
are near zero (a post every few months), some are better known, practices get ordinary critical
reviews, a few practices are busy; volume follows the hour of day, the day of the week and a slow
seasonal swell, and varies from day to day more than a Poisson process would. Some accounts are
regulars of one practice, some review several. Planted events: fast pile-ons, one-off threats,
a quiet doctor suddenly in the news, a slow-burning campaign of near-identical allegations across
practices, and one account targeting members of several practices.

``replay`` inserts the posts into a real database hour by hour (each post appears at its posting
time, already classified) and runs the real detection (``cases.detect.detect``) after each hour.

An event is **detectable** at the first moment when its own posts alone satisfy the rule meant to
catch it, using the settings' thresholds and never the statistical model:

* threat: the threat is posted;
* pile-on: ``pile_on_authors`` distinct authors of its flagged posts within ``pile_on_hours``;
* in the news: ``spike_min_authors`` distinct authors of its flagged posts within
  ``spike_window_hours`` (the doctor is quiet, so the minimum is what the model needs too);
* campaigns: within ``campaign_days``, ``campaign_min_entities`` posts naming as many members of
  ``campaign_min_practices`` practices.

It is **detected** when one of its posts is first linked to a case (a new case, or one already
open). The delay is detected − detectable: with hourly runs, "found within one run" is a delay of
at most an hour. A case is **false** when none of the posts it opened with belongs to an event.

``baseline`` runs the naive alternative on the same posts: every hour, per entity, flagged posts in
the last 24 hours against the mean plus three standard deviations of the 14 daily counts before.
"""

from __future__ import annotations

import bisect
import math
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Engine, select, update

from cases.detect import DetectionSettings, detect
from vigil.db import transaction
from vigil.labels import FLAGGED
from vigil.models import (
    Case,
    CaseMention,
    Classification,
    Doctor,
    Mention,
    MentionEntity,
    Practice,
    Tenant,
    TenantKind,
)

Ref = tuple[str, int]  # ("doctor", index) or ("practice", index) into the scenario's lists

HOUR_WEIGHTS = np.array(
    [
        0.2,
        0.1,
        0.1,
        0.1,
        0.1,
        0.2,
        0.5,
        0.9,
        1.2,
        1.3,
        1.3,
        1.3,
        1.4,
        1.3,
        1.2,
        1.2,
        1.2,
        1.3,
        1.4,
        1.5,
        1.5,
        1.3,
        0.9,
        0.5,
    ]
)
WEEKDAY_FACTORS = (1.35, 1.15, 1.05, 1.0, 0.95, 0.65, 0.6)  # Monday first: practices are busiest on Mondays
DAILY_SHAPE = 6.0  # day-to-day variation beyond Poisson: a Gamma multiplier with this shape (CV ≈ 0.4)


@dataclass(frozen=True)
class ScenarioConfig:
    practices: int = 100
    doctors_per_practice: int = 9
    busy_practices: int = 8
    days: int = 30
    history_days: int = 28
    start: datetime = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday
    pile_ons: int = 6
    threats: int = 6
    news: int = 2
    campaigns: int = 1
    author_campaigns: int = 1
    seed: int = 20261102

    def __post_init__(self) -> None:
        if self.days < 14:
            raise ValueError("a scenario needs at least 14 days: the slow campaign runs for about two weeks")
        if self.practices < 2 * self.busy_practices + 8:
            raise ValueError("a scenario needs quiet practices for its campaigns: add practices")

    @property
    def entities(self) -> int:
        return self.practices * (1 + self.doctors_per_practice)


@dataclass
class SimPost:
    at: datetime
    author: str
    entities: tuple[Ref, ...]
    text: str
    labels: tuple[str, ...]
    event: str | None = None
    mention_id: int | None = None

    @property
    def flagged(self) -> bool:
        return any(label in FLAGGED for label in self.labels)


@dataclass
class PlantedEvent:
    name: str
    kind: str
    target: str
    posts: list[SimPost]
    detectable_at: datetime

    def result(self, detected_at: datetime | None, found_by: str | None) -> EventResult:
        return EventResult(
            self.name, self.kind, self.target, len(self.posts), self.detectable_at, detected_at, found_by
        )


@dataclass
class Scenario:
    config: ScenarioConfig
    detection: DetectionSettings  # its thresholds define when each planted event is detectable
    practices: list[tuple[str, str, str]]  # ods code, name, town
    busy: set[int]
    doctors: list[tuple[str, str, int]]  # gmc number, full name, practice index
    posts: list[SimPost]
    events: list[PlantedEvent]

    def name(self, ref: Ref) -> str:
        kind, index = ref
        return f"Dr {self.doctors[index][1]}" if kind == "doctor" else self.practices[index][1]

    def practice_of(self, ref: Ref) -> int:
        kind, index = ref
        return self.doctors[index][2] if kind == "doctor" else index


# -- words ----------------------------------------------------------------------------------------

# fmt: off
FIRST = ["Amira", "Ben", "Carys", "Dev", "Ella", "Farid", "Grace", "Hamza", "Isla", "Jonah", "Kemi", "Liam",
    "Maya", "Nikhil", "Olu", "Priya", "Quinn", "Rosa", "Sam", "Tara", "Uma", "Vik", "Wren", "Yusuf", "Zara",
    "Aled", "Bryony", "Ciaran", "Dilys", "Emeka", "Fiona", "Gareth", "Hana", "Idris", "Jess", "Kwame",
    "Leah", "Marek", "Nia", "Owen", "Petra", "Rhys", "Siobhan", "Tomasz", "Ursula", "Viktor", "Winston",
    "Xanthe", "Yara", "Zoltan"]
LAST = ["Hassan", "Osei", "Morgan", "Patel", "Okafor", "Jones", "Evans", "Khan", "Walsh", "Nowak", "Reid",
    "Singh", "Byrne", "Clarke", "Davies", "Ellis", "Fraser", "Gupta", "Hughes", "Iqbal", "Jenkins", "Kaur",
    "Lewis", "Murphy", "Nolan", "Owusu", "Price", "Quayle", "Rahman", "Shah", "Thomas", "Usman", "Vance",
    "Wood", "Young", "Zhou", "Ahmed", "Begum", "Chowdhury", "Doyle", "Edwards", "Farah", "Green", "Hall",
    "Islam", "Jackson", "Kelly", "Lloyd", "Mensah", "Novak"]
STREETS = ["Acorn", "Beech", "Castle", "Dale", "Elm", "Fern", "Grove", "Heath", "Ivy", "Juniper", "Kings",
    "Larch", "Mill", "North", "Oak", "Park", "Queens", "Riverside", "Station", "Tower", "Union", "Vale",
    "West", "Willow", "York", "Abbey", "Bridge", "Church", "Dock", "Friars", "Gate", "High", "Market",
    "Orchard", "Priory"]
KINDS = ["Surgery", "Medical Centre", "Health Centre", "Medical Practice", "Family Practice"]
TOWNS = ["Leeds", "Bristol", "Norwich", "Exeter", "Harrogate", "York", "Derby", "Bath", "Hull", "Ipswich"]
# fmt: on

# fmt: off
# Complaints are built from slots, so that two reviewers rarely write the same sentence (as people
# rarely do) while still writing about the same few things: merely similar, never copies.
ACTIONS = ["cancelled", "lost", "refused", "forgot about", "messed up", "delayed", "ignored",
    "rushed through", "botched", "never sorted", "mixed up", "sat on", "turned down", "fobbed me off over",
    "argued about"]
OBJECTS = ["my appointment", "my blood test results", "my repeat prescription", "my referral",
    "my sick note", "my son's jabs", "my mum's medication review", "the letter for my housing",
    "my smear test", "my x-ray request", "my dad's home visit", "the callback I was promised",
    "my daughter's asthma review", "my scan results", "my inhaler", "the form for my benefits",
    "my wife's pain relief", "my ECG"]
WHENS = ["again", "for the third time", "last week", "this morning", "two days running", "after {n} days",
    "with no explanation", "without telling me", "yet again", "on Monday", "over the phone",
    "at the last minute", "after a {n} minute wait", "twice this month", ""]
LEADS = ["I had to", "We had to", "My husband had to", "I ended up having to", "Apparently I need to",
    "Now I have to", "So I'll have to", "My sister had to", "Had to", "Guess I'll"]
CHORES = ["ring at 8am {n} times", "queue outside from 7", "go to the walk-in centre", "wait {n} weeks",
    "pay for a private GP", "chase it myself", "explain everything again", "take another day off work",
    "beg the receptionist", "drive {n} miles to another branch", "sit on hold for {n} minutes",
    "email the practice manager", "ask the pharmacist instead", "go through 111",
    "fill in the online form {n} times"]
FEELINGS = ["Furious.", "So tired of this.", "Honestly shocking.", "Not acceptable.", "I give up.",
    "Exhausting.", "Ridiculous.", "Beyond frustrating.", "Why is it this hard?", "Unreal.", "Gutted.",
    "Appalling service.", "What a mess.", "Absolutely fed up.", "Is anyone in charge?"]
FILLERS = ["really", "just", "literally", "honestly", "actually", "basically", "totally", "once more", "",
    "", "", ""]
INSULTS = ["useless", "arrogant", "clueless", "lazy", "incompetent", "rude", "pathetic", "heartless",
    "smug", "careless", "hopeless", "spineless", "condescending", "dishonest", "cold"]
NOUNS = ["excuse for a doctor", "clown", "waste of space", "jobsworth", "fraud", "muppet", "embarrassment",
    "coward", "tyrant", "joke of a GP", "box ticker", "disgrace"]
ABUSE_FORMS = ["{name} is {a} and {b}.", "What {a} {noun} {name} is.", "{name}, you {a} {noun}.",
    "Never met a {noun} as {a} as {name}.", "{name} is the most {a} {noun} I've come across.",
    "{name} = {a} {noun}.", "Imagine being as {a} as {name}.", "{name} you are {a}, {b} and {c}."]
ABUSE_OPENERS = ["", "", "Honestly", "Seriously,", "Lol", "Wow.", "Not gonna lie,", "Look,", "Yeah so"]
ABUSE_TAILS = ["Do one.", "Retire already.", "Shame on you.", "Karma's coming.",
    "Hope you lose your licence.", "Nobody likes you.", "Get a real job.", "", "", ""]
# fmt: on

# fmt: off
CRITICAL_OPENERS = ["", "Honestly,", "Really disappointed.", "Third time now:", "Not impressed.", "Sigh.",
    "Update:", "PSA:", "So", "Just saying,", "Well.", "Again!", "Friendly reminder that", "Rant incoming.",
    "Unbelievable."]
CRITICAL_CLOSERS = ["", "Avoid.", "Shocking.", "Not good enough.", "Do better.", "#NHS", "One star.",
    "Rant over.", "Anyone else?", "Seriously.", "#GPcrisis", "Sort it out.", ":(", "Worst in {town}.",
    "Fuming."]
PRAISE = ["Thank you {name} for sorting my mum's medication so quickly.",
    "{name} is brilliant, so patient with my son.", "Shout out to {name}, saw me the same day.",
    "Huge thanks to {name} for the home visit yesterday.",
    "{name} actually listened. Rare and appreciated.", "Great care from {name} today, thank you.",
    "{name} went above and beyond for my dad.", "Can't fault {name}, kind and thorough."]
NEUTRAL = ["{name} flu clinic this Saturday from 9.", "{name} has new opening hours from {month}.",
    "Anyone know if {name} takes new patients?", "{name} is hiring a practice nurse.",
    "{name} car park closed for resurfacing next week.", "Got my booster at {name} today.",
    "{name} mentioned in the council's health report.", "Does {name} do travel jabs?"]
MONTHS = ["January", "March", "June", "September", "October"]
# fmt: on


def _fill(rng: np.random.Generator, template: str, **names: str) -> str:
    values = {
        "n": str(int(rng.integers(2, 45))),
        "month": MONTHS[int(rng.integers(len(MONTHS)))],
        **names,
    }
    text = template
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return " ".join(text.split()).replace(" .", ".")


def _pick(rng: np.random.Generator, options: list[str]) -> str:
    return options[int(rng.integers(len(options)))]


def critical_text(rng: np.random.Generator, name: str, town: str) -> str:
    complaint = (
        f"{name} {_pick(rng, FILLERS)} {_pick(rng, ACTIONS)} {_pick(rng, OBJECTS)} {_pick(rng, WHENS)}."
    )
    sentences = [complaint]
    if rng.random() < 0.7:
        sentences.append(f"{_pick(rng, LEADS)} {_pick(rng, FILLERS)} {_pick(rng, CHORES)}.")
    if rng.random() < 0.6:
        sentences.insert(int(rng.integers(len(sentences) + 1)), _pick(rng, FEELINGS))
    text = " ".join([_pick(rng, CRITICAL_OPENERS), *sentences, _pick(rng, CRITICAL_CLOSERS)])
    return _fill(rng, text, town=town)


def abusive_text(rng: np.random.Generator, name: str) -> str:
    a, b, c = (str(word) for word in rng.choice(INSULTS, size=3, replace=False))
    insult = _fill(rng, _pick(rng, ABUSE_FORMS), name=name, a=a, b=b, c=c, noun=_pick(rng, NOUNS))
    text = f"{_pick(rng, ABUSE_OPENERS)} {insult} {_pick(rng, ABUSE_TAILS)}"
    if rng.random() < 0.4:
        text += " " + critical_text(rng, name, "")
    return " ".join(text.split())


# -- the scenario ---------------------------------------------------------------------------------


def build_scenario(config: ScenarioConfig, detection: DetectionSettings) -> Scenario:
    rng = np.random.default_rng(config.seed)
    practices, doctors = _register(rng, config)
    busy = {int(i) for i in rng.choice(config.practices, size=config.busy_practices, replace=False)}
    scenario = Scenario(config, detection, practices, busy, doctors, [], [])
    scenario.posts = _background(rng, scenario)
    _plant_events(rng, scenario)
    scenario.posts.sort(key=lambda p: p.at)
    return scenario


def _register(
    rng: np.random.Generator, config: ScenarioConfig
) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, int]]]:
    practices: list[tuple[str, str, str]] = []
    doctors: list[tuple[str, str, int]] = []
    used: set[str] = set()
    for p in range(config.practices):
        town = TOWNS[p % len(TOWNS)]
        name = f"{STREETS[p % len(STREETS)]} {KINDS[(p // len(STREETS)) % len(KINDS)]}, {town}"
        practices.append((f"Y{p:05d}", name, town))
        for _ in range(config.doctors_per_practice):
            while (full := f"{_pick(rng, FIRST)} {_pick(rng, LAST)}") in used:
                pass
            used.add(full)
            doctors.append((f"{7100000 + len(doctors)}", full, p))
    return practices, doctors


def _rates(rng: np.random.Generator, scenario: Scenario) -> dict[Ref, float]:
    """Mentions per day: most doctors near zero, a few well known; practices modest, a few busy."""
    rates: dict[Ref, float] = {}
    for d in range(len(scenario.doctors)):
        tier = rng.random()
        mean = 0.012 if tier < 0.75 else 0.08 if tier < 0.95 else 0.4
        rates["doctor", d] = float(rng.gamma(2.0, mean / 2.0))
    for p in range(len(scenario.practices)):
        mean = 6.0 if p in scenario.busy else 0.35
        rates["practice", p] = float(rng.gamma(4.0, mean / 4.0))
    return rates


def _background(rng: np.random.Generator, scenario: Scenario) -> list[SimPost]:
    config = scenario.config
    rates = _rates(rng, scenario)
    regulars = {p: [f"regular-{p}-{i}" for i in range(3)] for p in range(len(scenario.practices))}
    reviewers = [f"reviewer-{i}" for i in range(40)]  # accounts that review several local practices
    posts: list[SimPost] = []
    first_day = config.start - timedelta(days=config.history_days)
    hour_p = HOUR_WEIGHTS / HOUR_WEIGHTS.sum()
    authors = iter(range(10**9))
    for day in range(config.history_days + config.days):
        midnight = first_day + timedelta(days=day)
        season = 1 + 0.15 * math.sin(2 * math.pi * day / 60)
        factor = WEEKDAY_FACTORS[midnight.weekday()] * season
        for ref, rate in rates.items():
            expected = rate * factor * rng.gamma(DAILY_SHAPE, 1 / DAILY_SHAPE)
            for _ in range(int(rng.poisson(expected))):
                at = midnight + timedelta(
                    hours=int(rng.choice(24, p=hour_p)), seconds=int(rng.integers(3600))
                )
                practice = scenario.practice_of(ref)
                roll = rng.random()
                if roll < 0.12:
                    author = _pick(rng, regulars[practice])
                elif roll < 0.14:
                    author = _pick(rng, reviewers)
                else:
                    author = f"user-{next(authors)}"
                posts.append(_background_post(rng, scenario, ref, at, author))
    return posts


def _background_post(
    rng: np.random.Generator, scenario: Scenario, ref: Ref, at: datetime, author: str
) -> SimPost:
    name = scenario.name(ref)
    town = scenario.practices[scenario.practice_of(ref)][2]
    roll = rng.random()
    critical_share = 0.35 if ref[0] == "practice" else 0.25
    labels: tuple[str, ...]
    if roll < 0.035:
        text, labels = abusive_text(rng, name), ("abusive",)
    elif roll < 0.035 + critical_share:
        text, labels = critical_text(rng, name, town), ("critical",)
    elif roll < 0.035 + critical_share + 0.25:
        text, labels = _fill(rng, _pick(rng, PRAISE), name=name), ("praise",)
    else:
        text, labels = _fill(rng, _pick(rng, NEUTRAL), name=name), ()
    return SimPost(at, author, (ref,), text, labels)


# -- planted events -------------------------------------------------------------------------------

# fmt: off
INCIDENTS = ["refused to see a disabled child", "was filmed shouting at an elderly patient",
    "told a grieving widow to stop wasting his time", "mocked a patient's accent on video"]
REACTIONS = ["Disgusting.", "Struck off NOW.", "How is this person still practising??", "Absolute scum.",
    "Sack them.", "Vile.", "Everyone report this.", "Shameful behaviour.", "Name and shame!", "I'm livid.",
    "Boycott this surgery.", "Get them out of medicine.", "No words.", "Sickening."]
THREATS = ["I know where {name} parks. Watch your back.",
    "Someone should sort {name} out. I'll be waiting outside the surgery tonight.",
    "{name} deserves a visit. I know where you live.",
    "Keep it up {name} and you'll regret it. We know your car."]
NEWS = ["GP {name} suspended after prescribing error, says local paper",
    "{name} under investigation over patient death", "Local GP {name} in the headlines today",
    "Read: the case against {name}"]
# fmt: on
CAMPAIGN = (
    "{name} at {practice} covered up a patient death last year. The GMC must investigate."
    " Share before they delete this."
)
# fmt: off
CAMPAIGN_EDITS = [('last year', 'in 2025'), ('must', 'needs to'), ('Share', 'Please share'),
    ('', ' #justice'), ('covered up', 'helped cover up'), (' The GMC', ' GMC')]
CRUSADE = ["{name} is part of the cover-up at {practice}. Corrupt. #exposed",
    "Another one: {name} ({practice}) lied to a family. Complicit. #exposed",
    "{name} of {practice} protects bad doctors. Remember the name.",
    "Don't trust {name} at {practice}. In on it. #exposed"]
# fmt: on


def _plant_events(rng: np.random.Generator, scenario: Scenario) -> None:
    days = scenario.config.days
    quiet = _quiet_doctors(scenario)
    rng.shuffle(quiet)
    targets = iter(quiet)
    busy = sorted(scenario.busy)

    def when(low: float, high: float) -> datetime:
        day = math.floor(float(rng.uniform(low, high)))
        return scenario.config.start + timedelta(days=day, hours=float(rng.uniform(8, 20)))

    for i in range(scenario.config.pile_ons):  # every third at a busy practice, the others at quiet doctors
        target: Ref = ("practice", busy[i % len(busy)]) if i % 3 == 2 else next(targets)
        _pile_on(rng, scenario, f"pile-on {i + 1}", target, when(1, days - 2))
    for i in range(scenario.config.threats):
        target = ("practice", busy[-1 - i % len(busy)]) if i % 3 == 1 else next(targets)
        _threat(rng, scenario, f"threat {i + 1}", target, when(1, days - 1))
    for i in range(scenario.config.news):
        _news(rng, scenario, f"in the news {i + 1}", next(targets), when(2, days - 3))
    for i in range(scenario.config.campaigns):
        _campaign(rng, scenario, f"campaign {i + 1}", when(1, max(2, days - 16)))
    for i in range(scenario.config.author_campaigns):
        _crusade(rng, scenario, f"one-account campaign {i + 1}", when(2, max(3, days - 12)))


def _quiet_doctors(scenario: Scenario) -> list[Ref]:
    counts: dict[Ref, int] = defaultdict(int)
    for post in scenario.posts:
        for ref in post.entities:
            counts[ref] += 1
    return [("doctor", d) for d in range(len(scenario.doctors)) if counts["doctor", d] <= 1]


def _add(
    scenario: Scenario, name: str, kind: str, target: str, posts: list[SimPost], detectable: datetime
) -> None:
    for post in posts:
        post.event = name
    scenario.posts.extend(posts)
    scenario.events.append(PlantedEvent(name, kind, target, posts, detectable))


def _pile_on(rng: np.random.Generator, scenario: Scenario, name: str, ref: Ref, start: datetime) -> None:
    incident, target = _pick(rng, INCIDENTS), scenario.name(ref)
    at, posts = start, []
    for i in range(int(rng.integers(8, 21))):
        at += timedelta(minutes=float(rng.exponential(9)))
        text = f"{target} {incident}. {_pick(rng, REACTIONS)} {_pick(rng, REACTIONS)}"
        labels = ("abusive",) if rng.random() < 0.7 else ("critical",)
        posts.append(SimPost(at, f"{name}-account-{i}", (ref,), text, labels))
    rules = scenario.detection
    detectable = first_time_with_authors(posts, rules.pile_on_authors, rules.pile_on_span)
    _add(scenario, name, "pile_on", target, posts, detectable)


def _threat(rng: np.random.Generator, scenario: Scenario, name: str, ref: Ref, at: datetime) -> None:
    text = _fill(rng, _pick(rng, THREATS), name=scenario.name(ref))
    post = SimPost(at, f"{name}-account", (ref,), text, ("threat", "abusive"))
    _add(scenario, name, "threat", scenario.name(ref), [post], at)


def _news(rng: np.random.Generator, scenario: Scenario, name: str, ref: Ref, start: datetime) -> None:
    target, posts = scenario.name(ref), []
    for hour in range(36):
        intensity = 3.0 * math.exp(-((hour - 8) ** 2) / 60)  # builds over the morning, fades next day
        for i in range(int(rng.poisson(intensity))):
            at = start + timedelta(hours=hour, minutes=float(rng.uniform(0, 60)))
            roll = rng.random()
            labels: tuple[str, ...]
            if roll < 0.45:
                text, labels = _fill(rng, _pick(rng, NEWS), name=target), ()
            elif roll < 0.8:
                text, labels = critical_text(rng, target, ""), ("critical",)
            else:
                text, labels = abusive_text(rng, target), ("abusive",)
            posts.append(SimPost(at, f"{name}-account-{hour}-{i}", (ref,), text, labels))
    posts.sort(key=lambda p: p.at)
    flagged = [p for p in posts if p.flagged]
    rules = scenario.detection
    detectable = first_time_with_authors(flagged, rules.spike_min_authors, rules.spike_window)
    _add(scenario, name, "news", target, posts, detectable)


def _members_across_practices(
    rng: np.random.Generator, scenario: Scenario, practices: int, per: int
) -> list[Ref]:
    chosen = rng.choice(
        [p for p in range(len(scenario.practices)) if p not in scenario.busy], size=practices, replace=False
    )
    doctors = [
        ("doctor", d) for d, (_, _, p) in enumerate(scenario.doctors) if p in set(int(c) for c in chosen)
    ]
    picked: list[Ref] = []
    for p in chosen:
        mine = [ref for ref in doctors if scenario.doctors[ref[1]][2] == int(p)]
        picked += mine[:per]
    rng.shuffle(picked)
    return picked


def _campaign(rng: np.random.Generator, scenario: Scenario, name: str, start: datetime) -> None:
    members = _members_across_practices(rng, scenario, practices=4, per=2)
    at, posts = start, []
    for i, ref in enumerate(members):
        practice_ref: Ref = ("practice", scenario.practice_of(ref))
        text = _fill(rng, CAMPAIGN, name=scenario.name(ref), practice=scenario.name(practice_ref))
        old, new = CAMPAIGN_EDITS[int(rng.integers(len(CAMPAIGN_EDITS)))]
        text = text.replace(old, new, 1) if old else text + new
        posts.append(SimPost(at, f"{name}-account-{i}", (ref, practice_ref), text, ("critical",)))
        at += timedelta(hours=float(rng.uniform(30, 54)))
    _add(
        scenario,
        name,
        "campaign",
        f"{len(members)} doctors in 4 practices",
        posts,
        campaign_detectable(scenario, posts),
    )


def _crusade(rng: np.random.Generator, scenario: Scenario, name: str, start: datetime) -> None:
    members = _members_across_practices(rng, scenario, practices=3, per=2)[:5]
    at, posts = start, []
    for ref in members:
        practice_ref: Ref = ("practice", scenario.practice_of(ref))
        text = _fill(rng, _pick(rng, CRUSADE), name=scenario.name(ref), practice=scenario.name(practice_ref))
        posts.append(SimPost(at, f"{name}-account", (ref, practice_ref), text, ("abusive",)))
        at += timedelta(hours=float(rng.uniform(36, 60)))
    _add(
        scenario,
        name,
        "campaign",
        f"{len(members)} doctors in 3 practices, one account",
        posts,
        campaign_detectable(scenario, posts),
    )


def first_time_with_authors(posts: list[SimPost], authors: int, span: timedelta) -> datetime:
    """The first post at which ``authors`` distinct authors posted within ``span`` (inclusive)."""
    for end in posts:
        inside = {p.author for p in posts if end.at - span <= p.at <= end.at}
        if len(inside) >= authors:
            return end.at
    raise ValueError("the planted event never becomes detectable: make it larger")


def campaign_detectable(scenario: Scenario, posts: list[SimPost]) -> datetime:
    rules = scenario.detection
    for end in posts:
        inside = [p for p in posts if end.at - rules.campaign_window <= p.at <= end.at]
        entities = {ref for p in inside for ref in p.entities}
        practices = {scenario.practice_of(ref) for ref in entities}
        enough = min(len(inside), len(entities)) >= rules.campaign_min_entities
        if enough and len(practices) >= rules.campaign_min_practices:
            return end.at
    raise ValueError("the planted campaign never becomes detectable: make it larger")


# -- replay ---------------------------------------------------------------------------------------


@dataclass
class EventResult:
    name: str
    kind: str
    target: str
    posts: int
    detectable_at: datetime
    detected_at: datetime | None
    case_reason: str | None

    @property
    def delay_hours(self) -> float | None:
        if self.detected_at is None:
            return None
        return (self.detected_at - self.detectable_at).total_seconds() / 3600


@dataclass
class Evaluation:
    """What one detector did with one scenario."""

    detector: str
    events: list[EventResult]
    cases: int
    false_cases: list[dict[str, Any]]
    entity_weeks: float
    runs: int
    seconds: float = 0.0

    @property
    def false_per_1000_entity_weeks(self) -> float:
        return 1000 * len(self.false_cases) / self.entity_weeks

    def found_within(self, hours: float) -> int:
        return sum(1 for e in self.events if e.delay_hours is not None and e.delay_hours <= hours)


def replay(
    engine: Engine,
    scenario: Scenario,
    config: DetectionSettings,
    every: timedelta = timedelta(hours=1),
    progress: Callable[[int, int], None] | None = None,
) -> Evaluation:
    """Insert the scenario hour by hour into a migrated, empty database, detecting after each hour."""
    refs = _insert_register(engine, scenario)
    start, end = scenario.config.start, scenario.config.start + timedelta(days=scenario.config.days)
    history = [p for p in scenario.posts if p.at < start]
    _insert_posts(engine, history, refs, scanned_at=start)  # earlier runs scanned these; they opened nothing
    month = [p for p in scenario.posts if p.at >= start]
    stamps = [p.at for p in month]
    began, position, runs = time.perf_counter(), 0, 0
    moment = start
    total_runs = math.ceil((end - start) / every)
    while moment < end:
        moment += every
        upto = bisect.bisect_right(stamps, moment, lo=position)
        _insert_posts(engine, month[position:upto], refs)
        position = upto
        detect(engine, config, now=moment)
        runs += 1
        if progress is not None:
            progress(runs, total_runs)
    seconds = time.perf_counter() - began
    return _evaluate_cases(engine, scenario, runs, seconds)


@dataclass(frozen=True)
class _Registered:
    """A scenario entity as stored: its kind, database id, and the name posts use for it."""

    kind: str
    id: int
    name: str


def _insert_register(engine: Engine, scenario: Scenario) -> dict[Ref, _Registered]:
    refs: dict[Ref, _Registered] = {}
    with transaction(engine) as session:
        practices = []
        for ods, name, town in scenario.practices:
            tenant = Tenant(kind=TenantKind.PRACTICE, slug=ods.lower(), name=name)
            practices.append(Practice(tenant=tenant, ods_code=ods, name=name, town=town, handles=[]))
        session.add_all(practices)
        session.flush()
        doctors = [
            Doctor(
                gmc_number=gmc,
                full_name=name,
                practice_id=practices[p].id,
                town=scenario.practices[p][2],
                aliases=[],
                handles=[],
            )
            for gmc, name, p in scenario.doctors
        ]
        session.add_all(doctors)
        session.flush()
        for i, practice in enumerate(practices):
            refs["practice", i] = _Registered("practice", practice.id, scenario.name(("practice", i)))
        for i, doctor in enumerate(doctors):
            refs["doctor", i] = _Registered("doctor", doctor.id, scenario.name(("doctor", i)))
    return refs


def _insert_posts(
    engine: Engine, posts: list[SimPost], refs: dict[Ref, _Registered], scanned_at: datetime | None = None
) -> None:
    if not posts:
        return
    with transaction(engine) as session:
        mentions = []
        for post in posts:
            mention = Mention(
                source="x",
                external_id=f"sim-{id(post)}",  # unique while the scenario lives
                url="",
                author=post.author,
                author_id=post.author,
                created_at=post.at,
                collected_at=post.at,
                text=post.text,
                extra={},
            )
            for ref in post.entities:
                entity = refs[ref]
                mention.entities.append(
                    MentionEntity(
                        matched_text=entity.name, linked_at=post.at, **{f"{entity.kind}_id": entity.id}
                    )
                )
            mention.classification = Classification(
                model_id="synthetic",
                model_version="1",
                classified_at=post.at,
                **{label: True for label in post.labels},
            )
            mentions.append(mention)
        session.add_all(mentions)
        session.flush()
        for post, mention in zip(posts, mentions, strict=True):
            post.mention_id = mention.id
        if scanned_at is not None:
            session.execute(
                update(Mention).where(Mention.id.in_([m.id for m in mentions])).values(detected_at=scanned_at)
            )


def _evaluate_cases(engine: Engine, scenario: Scenario, runs: int, seconds: float) -> Evaluation:
    event_of = {p.mention_id: p.event for p in scenario.posts if p.event is not None}
    with transaction(engine) as session:
        cases = {case.id: case for case in session.scalars(select(Case))}
        links = session.execute(
            select(CaseMention.case_id, CaseMention.mention_id, CaseMention.added_at)
        ).all()
    detected: dict[str, tuple[datetime, int]] = {}
    true_cases: set[int] = set()
    for case_id, mention_id, added_at in links:
        name = event_of.get(mention_id)
        if name is None:
            continue
        if added_at == cases[case_id].opened_at:
            true_cases.add(case_id)
        if name not in detected or added_at < detected[name][0]:
            detected[name] = (added_at, case_id)
    results = []
    for event in scenario.events:
        found = detected.get(event.name)
        case = cases[found[1]] if found else None
        results.append(event.result(found[0] if found else None, str(case.reason) if case else None))
    false = [
        {"id": c.id, "reason": str(c.reason), "title": c.title, "opened_at": c.opened_at.isoformat()}
        for c in cases.values()
        if c.id not in true_cases
    ]
    return Evaluation("vigil", results, len(cases), false, _entity_weeks(scenario), runs, seconds)


def _entity_weeks(scenario: Scenario) -> float:
    return scenario.config.entities * scenario.config.days / 7


# -- the naive baseline ---------------------------------------------------------------------------


def baseline(scenario: Scenario, every: timedelta = timedelta(hours=1), history_days: int = 14) -> Evaluation:
    """Three sigma on daily counts (Huginn's PeakDetector, Meltwater-style), hourly, per entity.

    An alert opens when the last 24 hours' flagged posts exceed the mean plus three standard
    deviations of the 14 daily counts before them, and stays open (no repeat) until they no longer do.
    """
    began = time.perf_counter()
    flagged: dict[Ref, list[SimPost]] = defaultdict(list)
    for post in scenario.posts:
        if post.flagged:
            for ref in post.entities:
                flagged[ref].append(post)
    times = {ref: [p.at for p in posts] for ref, posts in flagged.items()}
    start = scenario.config.start
    end = start + timedelta(days=scenario.config.days)
    day = timedelta(days=1)
    open_alerts: set[Ref] = set()
    alerts: list[tuple[datetime, Ref, list[SimPost]]] = []
    moment, runs = start, 0
    while moment < end:
        moment += every
        runs += 1
        # Only a new post can open an alert; an open one is checked every run until it closes.
        due = {ref for ref, stamps in times.items() if _count(stamps, moment - every, moment)} | open_alerts
        for ref in due:
            stamps = times[ref]
            count = _count(stamps, moment - day, moment)
            daily = [
                _count(stamps, moment - day * (k + 2), moment - day * (k + 1)) for k in range(history_days)
            ]
            threshold = statistics.fmean(daily) + 3 * statistics.pstdev(daily)
            if count > threshold and count >= 1:
                if ref not in open_alerts:
                    open_alerts.add(ref)
                    window = [p for p in flagged[ref] if moment - day < p.at <= moment]
                    alerts.append((moment, ref, window))
            else:
                open_alerts.discard(ref)
    results, false = [], []
    first: dict[str, datetime] = {}
    for at, ref, window in alerts:
        names = {p.event for p in window if p.event is not None}
        for name in names:
            first.setdefault(name, at)
        if not names:
            false.append({"entity": scenario.name(ref), "opened_at": at.isoformat()})
    for event in scenario.events:
        results.append(event.result(first.get(event.name), "three-sigma" if event.name in first else None))
    evaluation = Evaluation("three-sigma", results, len(alerts), false, _entity_weeks(scenario), runs)
    evaluation.seconds = time.perf_counter() - began
    return evaluation


def _count(stamps: list[datetime], start: datetime, end: datetime) -> int:
    """Posts in (start, end]."""
    return bisect.bisect_right(stamps, end) - bisect.bisect_right(stamps, start)


def summary(evaluations: Iterable[Evaluation], every: timedelta) -> dict[str, Any]:
    """The figures of each detector, as one JSON-ready object."""
    hours = every.total_seconds() / 3600
    out: dict[str, Any] = {}
    for ev in evaluations:
        out[ev.detector] = {
            "events": len(ev.events),
            "found": sum(1 for e in ev.events if e.detected_at is not None),
            "found_within_one_run": ev.found_within(hours),
            "cases": ev.cases,
            "false_cases": len(ev.false_cases),
            "false_per_1000_entity_weeks": round(ev.false_per_1000_entity_weeks, 3),
            "entity_weeks": round(ev.entity_weeks, 1),
            "runs": ev.runs,
            "seconds": round(ev.seconds, 2),
            "per_event": [
                {
                    "event": e.name,
                    "kind": e.kind,
                    "target": e.target,
                    "posts": e.posts,
                    "detectable_at": e.detectable_at.isoformat(),
                    "detected_at": e.detected_at.isoformat() if e.detected_at else None,
                    "delay_hours": None if e.delay_hours is None else round(e.delay_hours, 2),
                    "case_reason": e.case_reason,
                }
                for e in ev.events
            ],
        }
    return out
