"""What goes into each email besides the posts: wording per label, guidance, and why the recipient gets it."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy.orm import Session

from alerts.config import AlertsConfig
from alerts.guidance import Guidance, load_guidance, topics_for
from alerts.render import RenderedEmail, local_time, oneline, render_email
from alerts.views import LABEL_TITLES, entity_name, labelled_by, mention_views, scope_description
from vigil.labels import LABELS
from vigil.models import Alert, OperatorEvent, Recipient, Scope

# What the posts of an alert may do, as a predicate: it follows "a post naming X that" and "3 posts
# naming X" alike, so it never depends on the number of posts. An alert has one label, the most
# serious routed to the recipient, so phrases are used one at a time, never joined.
LABEL_PHRASES = {
    "threat": "may be threatening",
    "abusive": "may be abusive",
    "critical": "may be critical of them",
    "praise": "may be praising them",
}


def guidance_for(config: AlertsConfig, labels: Collection[str]) -> list[Guidance]:
    texts = load_guidance(config.guidance_dir, config.organisation_name, config.advice_line)
    return [texts[topic] for topic in topics_for(labels)]


def base_context(config: AlertsConfig, reason: str) -> dict[str, Any]:
    """What ``base-body.*`` needs: who sends this, and why this recipient receives it."""
    return {
        "organisation": oneline(config.organisation_name),
        "advice_line": config.advice_line,
        "footer": reason,
        "unsubscribe_url": config.email.unsubscribe_url,
        "unsubscribe_mailto": config.email.unsubscribe_mailto,
    }


def recipient_reason(recipient: Recipient) -> str:
    return (
        f"You receive this because {recipient.email} is registered in Vigil for"
        f" {scope_description(recipient)}."
    )


def alert_email(session: Session, config: AlertsConfig, alert: Alert) -> RenderedEmail | None:
    """The immediate alert: the posts (only those the recipient may see, and still labelled as
    alerted: a post corrected while its follow-up window was open is left out), labels, scores and
    guidance. None if no post is left."""
    timezone = config.digest.timezone
    recipient = alert.recipient
    # Guidance for the alert's own label and any more serious one, never a less serious one: the
    # advice on criticism (a reply template) must not sit beside "do not reply" in a threat alert.
    serious = LABELS[: LABELS.index(alert.label) + 1]
    mentions = [
        mention
        for mention in mention_views(session, recipient, [item.mention_id for item in alert.items], timezone)
        if any(label in serious for label in mention.label_names)  # not relabelled since it joined
    ]
    if not mentions:
        return None
    labels = {label for mention in mentions for label in mention.label_names if label in serious}
    window_start = alert.window_ends_at - config.group_window
    return render_email(
        "alert",
        {
            **base_context(config, recipient_reason(recipient)),
            "label": alert.label,
            "title": LABEL_TITLES[alert.label],
            "phrase": LABEL_PHRASES[alert.label],
            "entity": entity_name(alert.doctor, alert.practice),
            "follow_up": alert.follow_up,
            "since": local_time(window_start, timezone),
            "mentions": mentions,
            "labelled_by": labelled_by(mentions),
            "guidance": guidance_for(config, labels | {alert.label}),
            "for_organisation": recipient.scope is Scope.ORG,
            "report": alert.label in ("threat", "abusive"),
        },
    )


def operator_email(config: AlertsConfig, events: list[OperatorEvent]) -> RenderedEmail:
    """What the person running Vigil must know: sources failing, limits reached."""
    timezone = config.digest.timezone
    return render_email(
        "operator",
        {
            **base_context(
                config,
                f"You receive this because {config.email.operator_address} is Vigil's operator address.",
            ),
            "events": [
                {
                    "kind": oneline(event.kind, 64),
                    "subject": oneline(event.subject or event.kind),
                    "message": event.message,
                    "when": local_time(event.created_at, timezone),
                }
                for event in events
            ],
        },
    )
