"""Collector tests talk to fake servers on loopback only: any other address fails loudly."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from tests.collector.fakes.server import FakeServer

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@pytest.fixture
def server() -> Iterator[FakeServer]:
    """A fake API server on 127.0.0.1, closed after the test."""
    server = FakeServer()
    yield server
    server.close()


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in LOOPBACK:
            raise OSError(f"tests may not reach {name}: point the source at a fake server on 127.0.0.1")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield
