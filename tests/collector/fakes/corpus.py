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


STEP = timedelta(seconds=30)
FIRST_POST_AGE = timedelta(hours=6)


def more_items(existing: list[Item], count: int, phrase: str) -> list[Item]:
    """``count`` posts naming ``phrase``, 30 seconds apart, newer than every post in ``existing``.

    The first posts are six hours old: inside the first read window, and leaving room for
    later posts that are still in the past.
    """
    if existing:
        start = max(item.created_at for item in existing) + STEP
        first = max(item.number for item in existing) + 1
    else:
        start, first = datetime.now(UTC).replace(microsecond=0) - FIRST_POST_AGE, 1
    return [
        Item(
            number=first + index,
            created_at=start + STEP * index,
            text=f"Post {first + index}: {phrase} was rude to my mum at the surgery today",
            author=f"patient{(first + index) % 7}",
        )
        for index in range(count)
    ]
