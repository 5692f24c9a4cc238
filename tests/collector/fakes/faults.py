"""The fault cases every source is tested against, and the driver that runs one case.

Each source's test module provides a ``Harness``: its fake API on a ``FakeServer``, how to seed
posts, and how to build the real source (real client library) pointed at the fake. The same
table then runs for every source: a rate limit with its reset header, 500 and 503 answers, a
timeout, malformed JSON, an empty result, an authentication failure and several pages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import pytest

from collector.post import Post
from collector.sources.base import Batch, Source
from tests.collector.fakes.server import FakeServer, Reply
from vigil.settings import Settings, load_settings

# The timeout cases wait three times this; any other answer from the loopback server comes far
# sooner, with room for a pause of the test process (0.5 s once ran out on a plain 503 in CI).
CLIENT_TIMEOUT = 1.0


class FakeApi(Protocol):
    def rate_limited(self) -> Reply: ...
    def unauthorized(self) -> Reply: ...


class Harness(Protocol):
    server: FakeServer
    api: FakeApi
    data_path: str  # where posts are read (faults are injected there)
    auth_path: str  # where credentials are checked
    page_size: int

    def seed(self, count: int) -> None: ...
    def source(self) -> Source: ...


def source_settings(**overrides: Any) -> Settings:
    """Settings for a source under test: fast timeouts and retries, nothing from the environment."""
    defaults: dict[str, Any] = {
        "collector__timeout_seconds": CLIENT_TIMEOUT,
        "collector__retry_attempts": 2,
        "collector__retry_wait_seconds": 0,
        "collector__max_pages": 100,
    }
    return load_settings(environ={}).with_overrides(**{**defaults, **overrides})


@dataclass(frozen=True)
class Case:
    name: str
    reply: Callable[[FakeApi], Reply]
    times: int | None  # how many requests the fault answers; None: all of them
    expect: str  # ok, transient, permanent or rate_limited
    where: str = "data"


CASES = [
    Case("rate limit with reset header", lambda api: api.rate_limited(), None, "rate_limited"),
    Case("500 once, then the retry succeeds", lambda api: Reply(500, b"Internal Server Error"), 1, "ok"),
    Case("503 on every attempt", lambda api: Reply(503, b"Service Unavailable"), None, "transient"),
    Case(
        "timeout once, then the retry succeeds",
        lambda api: Reply(200, b"{}", delay=CLIENT_TIMEOUT * 3),
        1,
        "ok",
    ),
    Case(
        "timeout on every attempt", lambda api: Reply(200, b"{}", delay=CLIENT_TIMEOUT * 3), None, "transient"
    ),
    Case(
        "malformed JSON on every attempt",
        lambda api: Reply(200, b'{"data": [{"id": ', {"Content-Type": "application/json"}),
        None,
        "transient",
    ),
    Case("authentication failure", lambda api: api.unauthorized(), None, "permanent", where="auth"),
]
CASE_IDS = [case.name for case in CASES]


def fetch_all(source: Source, state: dict[str, Any] | None = None) -> tuple[list[Post], Batch]:
    """Fetch batch after batch, as the runner does, until the source has no more right now."""
    posts: list[Post] = []
    state = dict(state or {})
    while True:
        batch = source.fetch(state)
        posts.extend(batch.posts)
        state = batch.state
        if not batch.more or batch.error is not None:
            return posts, batch


def run_case(case: Case, harness: Harness) -> None:
    harness.seed(3)
    path = harness.auth_path if case.where == "auth" else harness.data_path
    harness.server.fail(case.reply(harness.api), path=path, times=case.times)
    posts, batch = fetch_all(harness.source())
    error = batch.error
    if case.expect == "ok":
        assert error is None, error and error.message
        assert len(posts) == 3
        return
    assert error is not None, "the fault went unnoticed"
    assert error.message
    if case.expect == "permanent":
        assert error.permanent
    elif case.expect == "transient":
        assert not error.permanent and error.retry_after is None
    elif case.expect == "rate_limited":
        assert not error.permanent
        assert error.retry_after is not None
        assert datetime.now(UTC) < error.retry_after < datetime.now(UTC) + timedelta(hours=2)


def check_empty_result(harness: Harness) -> None:
    posts, batch = fetch_all(harness.source())
    assert batch.error is None and posts == []


def check_several_pages(harness: Harness) -> None:
    count = harness.page_size * 2 + 5
    harness.seed(count)
    posts, batch = fetch_all(harness.source())
    assert batch.error is None
    assert len(posts) == count
    assert len({post.external_id for post in posts}) == count
    assert len(harness.server.calls(harness.data_path)) >= 3


class SourceContract:
    """Every source's tests subclass this (``class TestContract(SourceContract)``) and provide a
    ``harness`` fixture: the fault table, an empty result and several pages then run for it."""

    @pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
    def test_it_reports_each_fault_as_the_right_kind_of_error(self, case: Case, harness: Harness) -> None:
        run_case(case, harness)

    def test_an_empty_result_is_a_successful_poll(self, harness: Harness) -> None:
        check_empty_result(harness)

    def test_it_reads_several_pages(self, harness: Harness) -> None:
        check_several_pages(harness)
