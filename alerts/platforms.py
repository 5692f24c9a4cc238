"""Where each source's posts can be reported: the platform's name and its reporting help page.

Every platform reports a post from the post itself (the "..." menu, then Report); the help page
explains the steps and the options for threats. Sources not listed are websites and feeds, whose
owner is contacted directly.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Platform:
    name: str
    report_url: str
    how: str


_X = Platform(
    "X",
    "https://help.x.com/en/safety-and-security/report-abusive-behavior",
    "On the post, open the ... menu and choose Report.",
)
PLATFORMS: dict[str, Platform] = {
    "x": _X,
    "twitter": _X,
    "bluesky": Platform(
        "Bluesky",
        "https://bsky.social/about/support/community-guidelines",
        "On the post, open the ... menu and choose Report post.",
    ),
    "reddit": Platform(
        "Reddit",
        "https://www.reddit.com/report",
        "Use Report under the post or comment, or the form at reddit.com/report.",
    ),
    "mastodon": Platform(
        "Mastodon",
        "https://docs.joinmastodon.org/user/moderating/#report",
        "On the post, open the ... menu and choose Report; it goes to the moderators of that server.",
    ),
    "careopinion": Platform(
        "Care Opinion",
        "https://www.careopinion.org.uk/info/moderation",
        "Care Opinion moderates every story; contact them about one that breaks their policy.",
    ),
}

WEBSITE = Platform("Website", "", "Contact the website's owner or moderators, using its contact page.")


def platform_for(source: str) -> Platform:
    """The platform a source's posts live on; feeds and imports are ordinary websites."""
    return PLATFORMS.get(source.lower(), WEBSITE)
