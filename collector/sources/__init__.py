"""The sources Vigil polls, by name, and the settings each needs before it can be enabled.

Modules are imported only when a source is built: the client libraries are large, and most
commands never poll anything. ``files`` is not here: imports are run by hand
(``vigil collect import``), not polled.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from collector.sources.base import Context, Source
from vigil.errors import VigilError
from vigil.settings import Settings


@dataclass(frozen=True)
class SourceSpec:
    name: str
    target: str  # "module:Class"
    required: tuple[str, ...]  # options that must be set when the source is enabled


SOURCES: dict[str, SourceSpec] = {
    spec.name: spec
    for spec in (
        SourceSpec("x", "collector.sources.x:XSource", ("bearer_token",)),
        SourceSpec("bluesky", "collector.sources.bluesky:BlueskySource", ("handle", "app_password")),
        SourceSpec("mastodon", "collector.sources.mastodon:MastodonSource", ("instances",)),
        SourceSpec(
            "reddit", "collector.sources.reddit:RedditSource", ("client_id", "client_secret", "subreddits")
        ),
        SourceSpec("rss", "collector.sources.rss:FeedSource", ("feeds",)),
        SourceSpec("careopinion", "collector.sources.careopinion:CareOpinionSource", ("api_key",)),
    )
}


def enabled_sources(settings: Settings) -> list[str]:
    """The enabled sources, after checking each has what it needs (a bad setting stops start-up)."""
    enabled = []
    for name, spec in SOURCES.items():
        options = getattr(settings.sources, name)
        if not options.enabled:
            continue
        for option in spec.required:
            if not options.get(option):
                declaration = settings.declarations[f"sources.{name}.{option}"]
                raise VigilError(
                    f"source {name} is enabled but sources.{name}.{option} is not set "
                    f"(environment variable {declaration.env_name})"
                )
        enabled.append(name)
    return enabled


def build_source(name: str, context: Context) -> Source:
    module, _, cls = SOURCES[name].target.partition(":")
    source: Source = getattr(importlib.import_module(module), cls)(context)
    return source
