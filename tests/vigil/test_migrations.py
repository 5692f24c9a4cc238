from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.orm import Session

from alerts.config import load_config
from alerts.jobs import route_new_mentions
from alerts.routing import pending_mentions
from collector.store import address_key
from tests.conftest import make_practice_tenant
from vigil import migrate
from vigil.db import make_engine
from vigil.errors import VigilError
from vigil.models import (
    Base,
    Case,
    CaseEntity,
    CaseReason,
    CaseStatus,
    Classification,
    ErasedPost,
    Mention,
    MentionEntity,
    Severity,
)
from vigil.runtime import Runtime
from vigil.settings import load_settings


@pytest.fixture
def empty_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    url = request.getfixturevalue("pg_schema_url")
    drop_every_table(url)
    yield url
    # The schema is the session's, which later tests expect migrated and empty (``pg_migrated``).
    drop_every_table(url)
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()


def drop_every_table(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(text(f'DROP TABLE IF EXISTS "{table.name}" CASCADE'))
    engine.dispose()


def test_migrations_build_the_models_schema_and_undo_it(empty_url: str) -> None:
    engine = make_engine(empty_url)
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()
    migrate.check(engine)  # raises if the models and the migrations disagree
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    migrate.downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()


def test_each_migration_downgrades_to_its_parent_and_back(empty_url: str) -> None:
    engine = make_engine(empty_url)
    migrate.upgrade(engine)
    revisions = [r.revision for r in migrate.script_directory().walk_revisions()]
    for _ in revisions:
        migrate.downgrade(engine, "-1")
    assert migrate.current_revision(engine) is None
    migrate.upgrade(engine)
    migrate.check(engine)
    engine.dispose()


def test_vigil_run_needs_the_schema_this_code_was_written_for(empty_url: str) -> None:
    runtime = Runtime(load_settings(environ={"VIGIL_DATABASE__URL": empty_url}))
    head = migrate.head_revision()
    assert head is not None
    previous = migrate.script_directory().get_revision(head).down_revision
    try:
        migrate.upgrade(runtime.engine, str(previous))
        assert not migrate.schema_is_current(runtime.engine)
        with pytest.raises(
            VigilError, match=rf"is at schema {previous}, and this version of Vigil needs {head}"
        ):
            migrate.require_current(runtime)
    finally:
        migrate.upgrade(runtime.engine)
    assert migrate.schema_is_current(runtime.engine)
    migrate.require_current(runtime)
    runtime.close()


def test_downgrading_sqlite_keeps_the_rows_that_point_at_a_rebuilt_table(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'vigil.db'}")
    migrate.upgrade(engine)
    with Session(engine) as session:
        alice = make_practice_tenant(
            session, "A10001", "Alice Road Surgery", "Leeds", [("1000001", "Amira Hassan")]
        )
        mention = Mention(
            source="rss", external_id="1", created_at=datetime(2026, 12, 1, tzinfo=UTC), text="Amira"
        )
        mention.entities.append(MentionEntity(doctor=alice.doctors[0], matched_text="Amira"))
        session.add(mention)
        session.commit()
    migrate.downgrade(engine, "0006")  # drops columns of mentions: SQLite rebuilds the table
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM mention_entities")).scalar() == 1
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1  # enforcement is back on
    migrate.upgrade(engine)
    migrate.check(engine)
    engine.dispose()


def test_the_upgrade_to_0009_keeps_one_of_each_duplicate_link_and_drops_alert_names_as_authors(
    tmp_path: Path,
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'vigil.db'}")
    migrate.upgrade(engine, "0008")
    with Session(engine) as session:
        alice = make_practice_tenant(
            session, "A10001", "Alice Road Surgery", "Leeds", [("1000001", "Amira Hassan")]
        )
        session.commit()
        doctor_id = alice.doctors[0].id
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO mentions (id, source, external_id, url, author, created_at, collected_at, text,"
                " extra) VALUES (1, 'rss', '1', '', 'Google Alert - Amira Hassan', '2026-12-01', '2026-12-01', 'Amira', '{}')"
            )
        )
        for _ in range(2):
            connection.execute(
                text(
                    "INSERT INTO mention_entities (mention_id, doctor_id, matched_text, reason)"
                    " VALUES (1, :doctor, 'Amira', '')"
                ),
                {"doctor": doctor_id},
            )
    migrate.upgrade(engine)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM mention_entities")).scalar() == 1
        assert connection.execute(text("SELECT author FROM mentions")).scalar() == ""
    engine.dispose()


def test_the_upgrade_to_0011_frees_the_slots_that_closed_cases_still_held(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'vigil.db'}")
    migrate.upgrade(engine, "0010")
    with Session(engine) as session:
        alice = make_practice_tenant(
            session, "A10001", "Alice Road Surgery", "Leeds", [("1000001", "Amira Hassan")]
        )
        doctor = alice.doctors[0]
        for status, slot in ((CaseStatus.CLOSED, "pile_on:doctor:1"), (CaseStatus.NEW, "spike:doctor:1")):
            case = Case(reason=CaseReason.PILE_ON, status=status, severity=Severity.MEDIUM, title="t")
            case.entities.append(CaseEntity(doctor=doctor, open_slot=slot))
            session.add(case)
        session.commit()
    migrate.upgrade(engine)
    with engine.connect() as connection:
        slots = connection.execute(text("SELECT open_slot FROM case_entities ORDER BY id")).scalars().all()
    assert slots == [None, "spike:doctor:1"]  # the open case keeps its slot
    engine.dispose()


def test_the_upgrade_to_0013_marks_pending_exactly_the_mentions_routing_has_still_to_see(
    empty_url: str,
) -> None:
    """Never routed, or routed before their labels changed: pending. Routed with their labels (or
    with later ones): not."""
    engine = make_engine(empty_url)
    migrate.upgrade(engine, "0012")
    seen = {1: None, 2: "10:00", 3: "09:00", 4: "11:00"}  # classified at 10:00; routed with...
    with engine.begin() as connection:
        for mention_id, routed in seen.items():
            connection.execute(
                text(
                    "INSERT INTO mentions (id, source, external_id, url, author, created_at, collected_at,"
                    " text, extra) VALUES (:id, 'x', :id, '', '', :at, :at, 'Amira', '{}')"
                ),
                {"id": mention_id, "at": "2026-12-01 08:00:00.000000"},
            )
            connection.execute(
                text(
                    "INSERT INTO classifications (mention_id, model_id, model_version, scores, threat, abusive,"
                    " critical, praise, classified_at) VALUES (:id, 'm', '1', '{}', true, false, false,"
                    " false, '2026-12-01 10:00:00.000000')"
                ),
                {"id": mention_id},
            )
            if routed is not None:
                connection.execute(
                    text(
                        "INSERT INTO routed_mentions (mention_id, classified_at, routed_at) VALUES (:id, :at, :at)"
                    ),
                    {"id": mention_id, "at": f"2026-12-01 {routed}:00.000000"},
                )
    try:
        migrate.upgrade(engine)
        with Session(engine) as session:
            pending = session.scalars(
                select(Classification.mention_id)
                .where(Classification.routing_pending)
                .order_by(Classification.mention_id)
            ).all()
    finally:
        with engine.begin() as connection:  # the schema is the next tests' (PostgreSQL): leave it empty
            for table in ("routed_mentions", "classifications", "mentions"):
                connection.execute(text(f"DELETE FROM {table}"))
        engine.dispose()
    assert pending == [1, 3]


def test_a_database_an_0008_release_alerted_from_has_nothing_to_route_again_after_the_upgrade(
    empty_url: str,
) -> None:
    """Rows as the 0008 release wrote them: a recent abusive post, routed, alerted and emailed."""
    engine = make_engine(empty_url)
    migrate.upgrade(engine, "0008")
    with Session(engine) as session:
        alice = make_practice_tenant(
            session, "A10001", "Alice Road Surgery", "Leeds", [("1000001", "Amira Hassan")]
        )
        assert alice.recipient is not None
        doctor_id, recipient_id = alice.doctors[0].id, alice.recipient.id
    now = datetime.now(UTC).replace(microsecond=0)
    times = {"posted": now - timedelta(hours=2), "collected": now - timedelta(hours=1), "done": now}
    old_release_rows = [
        "INSERT INTO mentions (id, source, external_id, url, author, created_at, collected_at, text, extra)"
        " VALUES (1, 'x', '1', 'https://x.com/a/status/1', '@a', :posted, :collected, 'Amira is vile', '{}')",
        "INSERT INTO mention_entities (mention_id, doctor_id, matched_text, reason)"
        " VALUES (1, :doctor, 'Amira', '')",
        "INSERT INTO classifications (mention_id, model_id, model_version, scores, threat, abusive,"
        " critical, praise, classified_at) VALUES (1, 'vigil', 'v1', '{}', FALSE, TRUE, FALSE, FALSE, :done)",
        "INSERT INTO routed_mentions (mention_id, classified_at, routed_at) VALUES (1, :done, :done)",
        "INSERT INTO alerts (id, recipient_id, label, doctor_id, follow_up, opened_at, window_ends_at,"
        " due_at, enqueued_at) VALUES (1, :recipient, 'abusive', :doctor, FALSE, :done, :done, :done, :done)",
        "INSERT INTO alert_mentions (alert_id, mention_id, recipient_id) VALUES (1, 1, :recipient)",
    ]
    with engine.begin() as connection:
        for statement in old_release_rows:
            connection.execute(text(statement), {**times, "doctor": doctor_id, "recipient": recipient_id})
    migrate.upgrade(engine)
    with Session(engine) as session:
        assert pending_mentions(session) == []
    config = load_config(load_settings(environ={"VIGIL_DATABASE__URL": empty_url}))
    assert route_new_mentions(engine, config, now).alerted == 0
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM alert_mentions")).scalar() == 1
    engine.dispose()


def test_a_downgrade_below_0012_keeps_the_erasure_list_unless_told_to_forget_it(empty_url: str) -> None:
    engine = make_engine(empty_url)
    migrate.upgrade(engine)
    with Session(engine) as session:
        session.add(ErasedPost(key=address_key("https://x.com/i/status/1"), erased_at=datetime.now(UTC)))
        session.commit()
    with pytest.raises(VigilError, match=r"holds 1 post\(s\) erased on request .* --forget-erasures"):
        migrate.downgrade(engine, "0011")
    assert migrate.current_revision(engine) == migrate.head_revision()
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM erased_posts")).scalar() == 1
    migrate.downgrade(engine, "0011", forget_erasures=True)
    assert migrate.current_revision(engine) == "0011"
    engine.dispose()
