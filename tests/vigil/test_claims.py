from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from vigil.claims import claim, release
from vigil.models import Classification, Mention


def add_mentions(session: Session, n: int) -> None:
    now = datetime(2026, 11, 2, tzinfo=UTC)
    session.add_all(
        Mention(source="x", external_id=str(i), text=f"post {i}", created_at=now) for i in range(n)
    )
    session.commit()


def claim_unclassified(session: Session, limit: int, lease: timedelta = timedelta(minutes=10)) -> list[int]:
    _, ids = claim(
        session,
        Mention,
        pending=~Mention.classification.has(),
        claimed_by=Mention.classify_claimed_by,
        claimed_at=Mention.classify_claimed_at,
        limit=limit,
        lease=lease,
    )
    session.commit()
    return ids


def test_two_claims_never_get_the_same_rows(session: Session) -> None:
    add_mentions(session, 10)
    first = claim_unclassified(session, 6)
    second = claim_unclassified(session, 6)
    assert len(first) == 6 and len(second) == 4
    assert not set(first) & set(second)
    assert claim_unclassified(session, 6) == []


def test_finished_rows_are_no_longer_pending(session: Session) -> None:
    add_mentions(session, 3)
    ids = claim_unclassified(session, 1)
    session.add(Classification(mention_id=ids[0], model_id="m", model_version="1"))
    session.commit()
    release(session, Mention, ids, Mention.classify_claimed_by, Mention.classify_claimed_at)
    session.commit()
    assert set(claim_unclassified(session, 10)) == set(range(1, 4)) - set(ids)


def test_a_stale_claim_is_taken_over_and_a_released_one_at_once(session: Session) -> None:
    add_mentions(session, 2)
    ids = claim_unclassified(session, 2)
    session.execute(update(Mention).values(classify_claimed_at=datetime.now(UTC) - timedelta(hours=1)))
    session.commit()
    assert claim_unclassified(session, 2) == ids
    release(session, Mention, ids[:1], Mention.classify_claimed_by, Mention.classify_claimed_at)
    session.commit()
    assert claim_unclassified(session, 2) == ids[:1]


def test_concurrent_workers_split_the_work_without_overlap(engine: Engine) -> None:
    with Session(engine) as session:
        add_mentions(session, 200)
    got: list[list[int]] = []
    lock = threading.Lock()

    def worker() -> None:
        with Session(engine) as session:
            while ids := claim_unclassified(session, 7):
                with lock:
                    got.append(ids)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    flat = [i for ids in got for i in ids]
    assert sorted(flat) == list(range(1, 201))
    with Session(engine) as session:
        assert session.scalar(select(Mention).where(Mention.classify_claimed_by.is_(None))) is None
