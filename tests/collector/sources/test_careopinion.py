from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from collector.sources.base import Context
from collector.sources.careopinion import CareOpinionSource
from tests.collector.fakes.careopinion import API_KEY, PATH, FakeCareOpinion
from tests.collector.fakes.corpus import more_items
from tests.collector.fakes.faults import SourceContract, fetch_all, source_settings
from tests.collector.fakes.server import FakeServer

ODS_CODES = ["A10001", "B20002"]


class Harness:
    data_path = PATH
    auth_path = PATH
    page_size = FakeCareOpinion.page_size

    def __init__(self, server: FakeServer, ods_codes: list[str] = ODS_CODES) -> None:
        self.server = server
        self.api = FakeCareOpinion(server, ODS_CODES)
        self.ods_codes = ods_codes

    def seed(self, count: int) -> None:
        self.api.items += more_items(self.api.items, count, "the receptionist")

    def source(self) -> CareOpinionSource:
        settings = source_settings(
            sources__careopinion__enabled=True,
            sources__careopinion__base_url=self.server.base_url,
            sources__careopinion__api_key=API_KEY,
        )
        return CareOpinionSource(Context(settings=settings, ods_codes=self.ods_codes))


@pytest.fixture
def harness(server: FakeServer) -> Harness:
    return Harness(server)


class TestContract(SourceContract):
    pass


def test_it_asks_for_the_registered_practices_newest_first_with_the_key_in_a_header(harness: Harness) -> None:
    harness.seed(2)
    fetch_all(harness.source())
    [request] = harness.server.calls(PATH)
    assert request.query["nacs"] == ODS_CODES
    assert request.arg("dateofpublicationorder") == "descending"
    assert request.headers["authorization"] == f"SUBSCRIPTION_KEY {API_KEY}"
    assert "key" not in request.query  # the key never travels in a URL (URLs get logged)


def test_stories_become_posts_filed_under_their_practice(harness: Harness) -> None:
    harness.seed(1)
    [post], batch = fetch_all(harness.source())
    item = harness.api.items[0]
    assert batch.error is None
    assert post.source == "careopinion"
    assert post.external_id == str(1_200_000 + item.number)
    assert post.url == f"https://www.careopinion.org.uk/{1_200_000 + item.number}"
    assert post.text == f"Story {item.number}\n\n{item.text}"
    assert post.created_at == item.created_at
    assert post.extra["ods_codes"] == [harness.api.ods_of(item)]


def test_the_next_sweep_asks_only_for_stories_published_since(harness: Harness) -> None:
    harness.seed(3)
    source = harness.source()
    _, batch = fetch_all(source)
    harness.seed(2)
    second, _ = fetch_all(source, batch.state)
    assert harness.server.calls(PATH)[-1].arg("publishedafter") == harness.api.items[2].created_at.isoformat()
    assert len(second) == 3  # the two new stories and the newest one again (the store skips it)


def test_many_practices_are_asked_for_in_chunks(harness: Harness) -> None:
    harness.ods_codes = [f"Y{n:05d}" for n in range(120)]
    fetch_all(harness.source())
    assert [len(r.query["nacs"]) for r in harness.server.calls(PATH)] == [50, 50, 20]


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ({"id": None}, False),
        (None, False),
        ({"dateOfPublication": None, "dateOfSubmission": None}, False),
        ({"dateOfPublication": "01/12/2026 10:00"}, True),
    ],
    ids=["no id", "not an object", "no date", "a publication date that is no time"],
)
def test_a_malformed_story_is_skipped_by_name_or_dated_by_its_submission_and_the_others_kept(
    harness: Harness, caplog: pytest.LogCaptureFixture, sent: object, kept: bool
) -> None:
    harness.seed(3)
    harness.api.sent[2] = sent
    with caplog.at_level(logging.ERROR):
        posts, batch = fetch_all(harness.source())
    assert batch.error is None
    assert len(posts) == 2 + kept
    since = batch.state["queries"][",".join(ODS_CODES)]["since"]
    assert since == harness.api.items[-1].created_at.isoformat()  # the sweep moved on
    if not kept:
        assert "source careopinion: skipped item" in caplog.text


def test_a_story_dated_in_the_future_does_not_move_the_next_sweep_past_stories_still_to_come(
    harness: Harness,
) -> None:
    harness.seed(2)
    harness.api.sent[2] = {"dateOfPublication": "2099-01-01T00:00:00"}
    source = harness.source()
    [_, future], batch = fetch_all(source)
    assert future.created_at <= datetime.now(UTC)
    assert datetime.fromisoformat(batch.state["queries"][",".join(ODS_CODES)]["since"]) <= datetime.now(UTC)
    harness.seed(1)
    harness.api.items[-1].created_at = datetime.now(UTC)  # published since the last sweep
    later, _ = fetch_all(source, batch.state)
    assert str(1_200_000 + harness.api.items[-1].number) in {post.external_id for post in later}
