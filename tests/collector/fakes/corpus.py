"""Posts the fake APIs serve: plain facts that each fake turns into its own API's JSON."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


@dataclass
class Item:
    number: int
    created_at: datetime
    text: str
    author: str
    reply_to: str | None = None

    def snowflake(self) -> int:
        """An X-style id: milliseconds since X's epoch << 22, plus a sequence."""
        millis = int(self.created_at.timestamp() * 1000) - 1288834974657
        return (millis << 22) + self.number

    def mastodon_id(self) -> int:
        """A Mastodon-style id: milliseconds << 16, plus a sequence."""
        return (int(self.created_at.timestamp() * 1000) << 16) + self.number


def recent(minutes: float) -> datetime:
    return datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=minutes)


def make_corpus(count: int, phrase: str, *, every_minutes: float = 1.0, first: int = 1) -> list[Item]:
    """``count`` posts naming ``phrase``, one a minute up to a minute ago, oldest first."""
    return [
        Item(
            number=first + index,
            created_at=recent((count - index) * every_minutes),
            text=f"Post {first + index}: {phrase} was rude to my mum at the surgery today",
            author=f"patient{(first + index) % 7}",
        )
        for index in range(count)
    ]
