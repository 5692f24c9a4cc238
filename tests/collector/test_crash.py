"""Crash safety: a collector killed with SIGKILL at any moment loses no post and stores none twice.

A real ``vigil collect --once`` process reads a fake API page by page (one page per batch) and is
killed: once while it waits for a page (so earlier batches are committed and later ones not),
then several times after random delays (which land anywhere: mid-request, mid-commit). A last
run finishes the job. The stored mentions must then be exactly the fake server's corpus.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.collector.fakes.bluesky import HANDLE, PASSWORD, SEARCH, FakeBluesky
from tests.collector.fakes.corpus import Item, more_items
from tests.collector.fakes.reddit import CLIENT_ID, CLIENT_SECRET, SEARCH_PATH, FakeReddit
from tests.collector.fakes.server import FakeServer, Request
from tests.collector.fakes.x import PATH as X_PATH
from tests.collector.fakes.x import TOKEN as X_TOKEN
from tests.collector.fakes.x import FakeX
from tests.conftest import Tenancy
from vigil.models import Mention, MentionEntity

ROOT = Path(__file__).resolve().parents[2]
PHRASE = "Dr Amira Hassan in Leeds"


@dataclass
class Fake:
    name: str
    page_path: str  # regex of the path pages are read from
    corpus: list[Item]
    env: dict[str, str]


def x(server: FakeServer) -> Fake:
    api = FakeX(server)
    api.items += more_items([], 57, PHRASE)
    env = {
        "VIGIL_SOURCES__X__ENABLED": "true",
        "VIGIL_SOURCES__X__BASE_URL": server.base_url,
        "VIGIL_SOURCES__X__BEARER_TOKEN": X_TOKEN,
        "VIGIL_SOURCES__X__MAX_RESULTS": "10",
    }
    return Fake("x", X_PATH, api.items, env)


def bluesky(server: FakeServer) -> Fake:
    api = FakeBluesky(server)  # 10 posts a page
    api.items += more_items([], 57, PHRASE)
    env = {
        "VIGIL_SOURCES__BLUESKY__ENABLED": "true",
        "VIGIL_SOURCES__BLUESKY__BASE_URL": server.base_url,
        "VIGIL_SOURCES__BLUESKY__HANDLE": HANDLE,
        "VIGIL_SOURCES__BLUESKY__APP_PASSWORD": PASSWORD,
    }
    return Fake("bluesky", SEARCH, api.items, env)


def reddit(server: FakeServer) -> Fake:
    api = FakeReddit(server)  # 100 posts a page
    api.items += more_items([], 257, PHRASE)
    env = {
        "VIGIL_SOURCES__REDDIT__ENABLED": "true",
        "VIGIL_SOURCES__REDDIT__CLIENT_ID": CLIENT_ID,
        "VIGIL_SOURCES__REDDIT__CLIENT_SECRET": CLIENT_SECRET,
        "VIGIL_SOURCES__REDDIT__OAUTH_URL": server.base_url,
        "VIGIL_SOURCES__REDDIT__REDDIT_URL": server.base_url,
    }
    return Fake("reddit", SEARCH_PATH, api.items, env)


FAKES: dict[str, Callable[[FakeServer], Fake]] = {"x": x, "bluesky": bluesky, "reddit": reddit}


class Collector:
    """Runs ``vigil collect --once`` in a child process against the test database."""

    def __init__(self, database_url: str, fake: Fake) -> None:
        self.env = {
            "PATH": os.environ.get("PATH", ""),
            "VIGIL_DATABASE__URL": database_url,
            "VIGIL_COLLECTOR__MAX_PAGES": "1",
            "VIGIL_COLLECTOR__RETRY_WAIT_SECONDS": "0",
            "VIGIL_LOG__LEVEL": "WARNING",
            **fake.env,
        }
        self.source = fake.name

    def start(self) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "vigil", "collect", "--once", "--source", self.source]
        return subprocess.Popen(
            command, env=self.env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )

    def run_to_the_end(self) -> None:
        process = self.start()
        try:
            out, err = process.communicate(timeout=120)
        finally:
            process.kill()
        assert process.returncode == 0, (out + err).decode()


def hold_page(server: FakeServer, path: str, number: int) -> threading.Event:
    """Make the ``number``-th request for a page hang, and report when it arrives."""
    arrived = threading.Event()
    seen = 0

    def hook(request: Request) -> None:
        nonlocal seen
        if re.fullmatch(path, request.path):
            seen += 1
            if seen == number:
                arrived.set()
                time.sleep(60)

    server.hooks.append(hook)
    return arrived


@pytest.mark.parametrize("name", list(FAKES))
def test_a_collector_killed_at_any_moment_loses_nothing_and_stores_nothing_twice(
    name: str, server: FakeServer, database_url: str, session: Session, alice: Tenancy
) -> None:
    fake = FAKES[name](server)
    collector = Collector(database_url, fake)

    arrived = hold_page(server, fake.page_path, number=3)
    process = collector.start()
    reached = arrived.wait(60)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert reached, "the collector never asked for the third page"
    server.hooks.clear()
    assert 0 < stored(session) < len(fake.corpus), "the kill should land mid-collection"

    server.hooks.append(
        lambda request: time.sleep(0.2) if re.fullmatch(fake.page_path, request.path) else None
    )
    generator = random.Random(20261124)
    for _ in range(3):
        process = collector.start()
        time.sleep(generator.uniform(0.8, 2.5))  # start-up takes about a second; then a page each 0.2 s
        process.send_signal(signal.SIGKILL)
        process.wait()
    server.hooks.clear()

    collector.run_to_the_end()
    collector.run_to_the_end()  # a further pass finds nothing new and stores nothing twice

    first_lines = [text.splitlines()[0] for text in session.scalars(select(Mention.text))]
    assert sorted(first_lines) == sorted(item.text for item in fake.corpus)
    assert stored(session) == len(fake.corpus)
    assert session.scalar(select(func.count()).select_from(MentionEntity)) == len(fake.corpus)
    session.commit()


def stored(session: Session) -> int:
    count = session.scalar(select(func.count()).select_from(Mention)) or 0
    session.commit()  # end the read: SQLite takes its write lock at BEGIN
    return count
