"""A synthetic UK register and post stream for the matching and X query benchmarks.

Names are drawn the way real ones are distributed: a few very common surnames and first names
(Smith, Jones, Patel; James, Sarah) carry much of the weight, and a long tail of rare surnames
makes most full names unique — so many doctors share a surname, some share a full name, and
most can be told apart only with context. Everything is seeded: the same arguments give the
same register and posts on every machine.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime

from collector.matching import Entity
from collector.names import CommonNames
from collector.post import Post


def _words(text: str) -> list[str]:
    return text.split()


TOWNS = _words(
    "Leeds Bristol Norwich Exeter Harrogate London Manchester Birmingham Liverpool Sheffield "
    "Newcastle Nottingham Leicester Coventry Bradford Hull Plymouth Stoke Derby Southampton "
    "Portsmouth Brighton Reading Oxford Cambridge York Bath Durham Carlisle Lancaster Preston "
    "Blackpool Bolton Wigan Wakefield Huddersfield Halifax Doncaster Rotherham Barnsley Lincoln "
    "Peterborough Ipswich Colchester Chelmsford Luton Watford Guildford Woking Maidstone Canterbury "
    "Dover Hastings Eastbourne Worthing Chichester Winchester Salisbury Swindon Gloucester "
    "Cheltenham Worcester Hereford Shrewsbury Telford Wolverhampton Walsall Dudley Solihull Warwick "
    "Northampton Kettering Bedford Milton Keynes Aylesbury Slough Basingstoke Bournemouth Poole "
    "Weymouth Taunton Yeovil Truro Penzance Barnstaple Torquay Kendal Whitehaven Scarborough "
    "Whitby Middlesbrough Darlington Sunderland Gateshead Hexham Morpeth Berwick Chester Crewe"
)
PLACE_SYLLABLES = _words(
    "ash ben brook burn by caster den don field ford gate ham hill holm ing "
    "ley low mead mere moor ness stead stow thorpe ton well wick wood worth"
)
SURNAME_SYLLABLES = _words(
    "al an ar ba be bel ber bur ca car cha dar del den don el en er fal fen "
    "gar gil gor ha hal har hen hol ing kin lan lar ley lin lo mar mer mon nor "
    "or pen per ra ren ros sal san sel sha ster tal ter tho ton tre val ver wel "
    "win wor yar"
)
CHATTER = _words(
    "the a and to of in is it that for on with was this you be at have are not but just so "
    "what all my your they we can get like one if out about up more time when there do today "
    "love great game match weekend weather train late again really think new people know "
    "good best morning night week football bus coffee shop town centre city park dog walk "
    "traffic rain sun holiday work office meeting lunch dinner tea pub quiz school kids"
)
HEALTH = _words("GP surgery appointment receptionist NHS prescription doctor waiting rude kind")


def _weighted(rng: random.Random, items: list[str], count: int) -> list[str]:
    """Zipf-like draw: the first items are the most frequent (the top one about 1 in 20 draws)."""
    weights = [1 / (rank + 5) for rank in range(len(items))]
    return rng.choices(items, weights=weights, k=count)


def _rare_surname(rng: random.Random) -> str:
    return "".join(rng.choice(SURNAME_SYLLABLES) for _ in range(rng.choice((2, 3, 3, 4)))).capitalize()


def _place(rng: random.Random) -> str:
    return (rng.choice(SURNAME_SYLLABLES) + rng.choice(PLACE_SYLLABLES)).capitalize()


def register(doctors: int, seed: int = 1) -> list[Entity]:
    """Practices (one per 45 doctors, like UK general practice) and doctors."""
    rng = random.Random(seed)
    common = CommonNames.bundled()
    surnames = sorted(common.surnames)
    rng.shuffle(surnames)
    firsts = sorted(common.first_names)
    rng.shuffle(firsts)
    nouns = ("Surgery", "Medical Centre", "Health Centre", "Medical Practice", "Practice")
    entities: list[Entity] = []
    practices = []
    for number in range(max(1, doctors // 45)):
        town = rng.choice(TOWNS)
        name = f"{_place(rng)} {rng.choice(nouns)}"
        handles = (f"@{name.split()[0].lower()}gp{number}",) if rng.random() < 0.4 else ()
        practice = Entity("practice", number + 1, f"P{number:05d}", (name,), handles, town=town)
        practices.append(practice)
        entities.append(practice)
    for number in range(doctors):
        surname = _weighted(rng, surnames, 1)[0] if rng.random() < 0.45 else _rare_surname(rng)
        first = _weighted(rng, firsts, 1)[0].capitalize() if rng.random() < 0.7 else _rare_surname(rng)
        full = f"{first} {surname.capitalize()}"
        aliases = (f"Dr {surname.capitalize()}",) if rng.random() < 0.3 else ()
        handles = (f"@dr{first.lower()}{surname.lower()}"[:16],) if rng.random() < 0.1 else ()
        practice = rng.choice(practices)
        entities.append(
            Entity(
                "doctor",
                number + 1,
                f"{7000000 + number:07d}",
                (full, *aliases),
                handles,
                town=practice.town,
                specialty="General practice",
                practice_id=practice.id,
                practice_names=practice.names,
                practice_handles=practice.handles,
            )
        )
    return entities


def posts(entities: list[Entity], count: int, seed: int = 2) -> Iterator[Post]:
    """Mostly chatter (85 %), some clear mentions (10 %), some ambiguous ones (5 %)."""
    rng = random.Random(seed)
    doctors = [entity for entity in entities if entity.kind == "doctor"]
    created = datetime(2026, 1, 1, tzinfo=UTC)
    for number in range(count):
        words = rng.choices(CHATTER, k=rng.randint(8, 30))
        if rng.random() < 0.1:
            words.append(rng.choice(TOWNS))
        roll = rng.random()
        doctor = rng.choice(doctors)
        if roll < 0.05:
            words[rng.randrange(len(words))] = f"{doctor.names[0]} in {doctor.town}"
        elif roll < 0.10:
            words += [*rng.choices(HEALTH, k=2), doctor.practice_names[0]]
        elif roll < 0.15:
            words.insert(rng.randrange(len(words)), f"Dr {doctor.names[0].split()[-1]}")
        text = " ".join(words).capitalize() + rng.choice((".", "!", "?", " 😡", ""))
        yield Post("bench", str(number), "", "someone", created, text)
