"""A public post as every source hands it over, before matching and storage."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Post:
    """One public post, normalised across sources.

    ``created_at`` is always timezone-aware UTC. ``in_reply_to`` is the handle of the account the
    post replies to, when the source says so: a reply to a doctor's own post is context that
    makes an ambiguous name match.
    """

    source: str
    external_id: str
    url: str
    author: str
    created_at: datetime
    text: str
    author_id: str | None = None
    lang: str | None = None
    conversation_id: str | None = None
    in_reply_to: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
