"""Collector tests talk to fake servers on loopback only: any other address fails loudly."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.collector.fakes.server import FakeServer, loopback_only  # noqa: F401  (autouse)


@pytest.fixture
def server() -> Iterator[FakeServer]:
    """A fake API server on 127.0.0.1, closed after the test."""
    server = FakeServer()
    yield server
    server.close()
