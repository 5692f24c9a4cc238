"""A small register for the matching and query tests: the sample register's hard cases."""

from __future__ import annotations

from collector.matching import Entity

MEANWOOD = Entity("practice", 101, "X90001", ("Meanwood Health Centre",), ("@meanwoodhealthgp",), "Leeds")
HEAVITREE = Entity("practice", 102, "X90014", ("Heavitree Surgery",), (), "Exeter")
THORPE = Entity("practice", 103, "X90011", ("Thorpe St Andrew Medical Centre",), ("@thorpestgp",), "Norwich")
BEDMINSTER = Entity("practice", 104, "X90006", ("Bedminster Family Practice",), (), "Bristol")
KNARESBOROUGH = Entity("practice", 105, "X90018", ("Knaresborough Road Surgery",), (), "Harrogate")
RIVERSIDE_NORWICH = Entity("practice", 106, "X90009", ("Riverside Surgery",), (), "Norwich")
RIVERSIDE_LEEDS = Entity("practice", 107, "X90021", ("Riverside Medical Centre",), (), "Leeds")
PRACTICES = [MEANWOOD, HEAVITREE, THORPE, BEDMINSTER, KNARESBOROUGH, RIVERSIDE_NORWICH, RIVERSIDE_LEEDS]


def doctor(
    id: int,
    gmc: str,
    names: tuple[str, ...],
    practice: Entity | None,
    handles: tuple[str, ...] = (),
    specialty: str = "General practice",
    town: str = "",
) -> Entity:
    return Entity(
        "doctor",
        id,
        gmc,
        names,
        handles,
        town=town or (practice.town if practice else ""),
        specialty=specialty,
        practice_id=practice.id if practice else None,
        practice_names=practice.names if practice else (),
        practice_handles=practice.handles if practice else (),
    )


DOCTORS = [
    doctor(1, "7000001", ("Daniel Smith", "Dr Dan Smith"), MEANWOOD, ("@drdansmith",)),
    doctor(2, "7000047", ("Helen Smith", "Dr H Smith"), HEAVITREE),
    doctor(3, "7000069", ("Harry Kane",), THORPE),
    doctor(4, "7000134", ("Amelia Pepper", "Dr Pepper"), BEDMINSTER, ("@ameliapeppergp",)),
    doctor(5, "7000190", ("John Watson",), KNARESBOROUGH),
    doctor(6, "7000198", ("Tobias Greenwood",), MEANWOOD),
    doctor(7, "7000340", ("Ewan Norcross", "Dr Norcross"), MEANWOOD),
    doctor(8, "7000400", ("Rajesh Patel",), None, specialty="Cardiology", town="Leeds"),
    doctor(9, "7000500", ("Karl Martens",), MEANWOOD),
    doctor(10, "7000277", ("Helen Ingram",), MEANWOOD, ("@drheleningram", "heleningram.bsky.social")),
    doctor(11, "7000456", ("Helen Morrison", "Dr Morrison"), MEANWOOD),
    doctor(12, "7000546", ("James Morrison", "Dr Morrison"), MEANWOOD),
    doctor(13, "7000600", ("Anna Smith-Jones",), HEAVITREE),
    doctor(14, "7000700", ("Sunil Kaneshiro",), None, town="Leeds"),
]
ENTITIES = [*PRACTICES, *DOCTORS]
