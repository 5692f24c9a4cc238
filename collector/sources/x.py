"""X (Twitter) recent search through tweepy, within a monthly read budget.

Queries come from the register (``collector.xquery.plan_queries``). Each query keeps its own
``since_id``; a sweep follows ``next_token`` with the same ``since_id`` and the first page's
``newest_id`` becomes the next ``since_id``. When the register changes the plan, a new query made
of terms already searched carries their ``since_id`` (``collector.xquery.carry_since_ids``); one
with a new term reads from the start of the last complete pass (``start_time``), never the
full 7 days.

Reads are billed per post returned, so the month's reads and their estimated cost live in the
checkpoint, committed with the posts they paid for: the operator is told at 80 % of
``sources.x.monthly_read_budget`` and reading stops at 100 % until the next calendar month (UTC).
X's own monthly usage cap (a 429 ``UsageCapExceeded``, not a rate limit) stops it the same way
(``usage_cap``).

X gives every edit of a post a new id, so a post is keyed on its original id (the first of
``edit_history_tweet_ids``): an edit is the post already stored, not a second mention and alert.
A post over 280 characters arrives cut short in ``text``; its whole text is in ``note_tweet``,
and a name or threat near its end must be seen.

tweepy always calls ``https://api.twitter.com``; ``sources.x.base_url`` is honoured by a redirect
adapter on the client's ``requests`` session (see ``collector.http``).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
import tweepy

from collector.http import describe, http_session
from collector.post import Post
from collector.sources.base import (
    Batch,
    Context,
    Notice,
    Page,
    SourceError,
    State,
    each_post,
    reset_time,
    retrying,
    sweep_queries,
)
from collector.xquery import carry_since_ids, plan_queries_from_settings

log = logging.getLogger(__name__)

X_API = "https://api.twitter.com"
TWEET_FIELDS = [
    "created_at",
    "conversation_id",
    "lang",
    "author_id",
    "in_reply_to_user_id",
    "referenced_tweets",
    "note_tweet",
]
EXPANSIONS = ["author_id", "in_reply_to_user_id"]
SEARCH_WINDOW = timedelta(days=7)
WARN_AT = 0.8

# tweepy logs every request's headers, bearer token included, at DEBUG level.
logging.getLogger("tweepy.client").setLevel(logging.INFO)


class XSource:
    name = "x"

    def __init__(self, context: Context) -> None:
        self.settings = context.settings
        self.options = context.options(self.name)
        self.queries = plan_queries_from_settings(  # queries ask for what the matcher will accept
            self.settings,
            context.entities,
            max_length=int(self.options.max_query_length),
            exclude_retweets=bool(self.options.exclude_retweets),
        )
        self.client = tweepy.Client(bearer_token=self.options.bearer_token.get(), wait_on_rate_limit=False)
        self.client.session = http_session(self.settings, redirect=(X_API, self.options.base_url))
        self.budget = int(self.options.monthly_read_budget)
        self.month_reads = 0

    def fetch(self, state: State) -> Batch:
        usage = month_usage(state, datetime.now(UTC))
        self.month_reads = usage["reads"]
        state = with_carried_since_ids(state, self.queries)
        batch = sweep_queries(
            self.settings, self.queries, state, self.fetch_page, may_read=self.within_budget
        )
        usage["reads"] = self.month_reads
        batch.notices.extend(self.budget_notices(usage))
        batch.state["usage"] = usage
        return batch

    def within_budget(self) -> bool:
        """Reading stops once this month's reads reach the budget (the checkpoint carries them)."""
        return self.month_reads < self.budget

    def fetch_page(self, query: str, since: str | None, cursor: str | None, start: datetime) -> Page:
        remaining = self.budget - self.month_reads
        params: dict[str, Any] = {
            "max_results": max(10, min(int(self.options.max_results), remaining)),
            "tweet_fields": TWEET_FIELDS,
            "expansions": EXPANSIONS,
            "user_fields": ["username", "name"],
        }
        oldest_allowed = datetime.now(UTC) - SEARCH_WINDOW + timedelta(minutes=1)
        if since and snowflake_time(since) > oldest_allowed:
            params["since_id"] = since
        else:
            # X answers 400 to a since_id older than its 7-day window (after a long outage).
            params["start_time"] = max(start, oldest_allowed)
        if cursor:
            params["next_token"] = cursor
        response = retrying(
            self.settings, lambda: self.client.search_recent_tweets(query, **params), classify_error
        )
        posts = to_posts(response)
        self.month_reads += int(response.meta.get("result_count", len(posts)))
        return Page(posts, cursor=response.meta.get("next_token"), newest=response.meta.get("newest_id"))

    def budget_notices(self, usage: dict[str, Any]) -> list[Notice]:
        """Tell the operator once a month at 80 % and once at 100 % of the read budget."""
        notices = []
        cost = usage["reads"] * float(self.options.cost_per_read)
        spent = f"{usage['reads']:,} of {self.budget:,} posts read in {usage['month']} (about ${cost:,.2f})"
        if usage["reads"] >= self.budget and not usage.get("stopped"):
            usage["stopped"] = True
            message = (
                f"X reading has stopped until next month: {spent}. "
                "Raise sources.x.monthly_read_budget to resume."
            )
            notices.append(Notice("x_budget_spent", "X read budget spent", message))
        elif usage["reads"] >= WARN_AT * self.budget and not usage.get("warned"):
            usage["warned"] = True
            message = (
                f"X has used {usage['reads'] / max(self.budget, 1):.0%} of its monthly read budget: {spent}."
            )
            notices.append(Notice("x_budget_warning", "X read budget at 80 %", message))
        return notices


def with_carried_since_ids(state: State, queries: list[str]) -> State:
    """When the register changes the plan, a new query made of terms already searched resumes from
    their ``since_id`` (exact, and cheaper than reading from the last poll's time)."""
    known = state.get("queries", {})
    previous = {query: entry["since"] for query, entry in known.items() if entry.get("since")}
    carried = carry_since_ids(previous, [query for query in queries if query not in known])
    return {**state, "queries": {**known, **{query: {"since": since} for query, since in carried.items()}}}


def month_usage(state: State, now: datetime) -> dict[str, Any]:
    """This calendar month's reads from the checkpoint; a new month starts from zero."""
    month = now.strftime("%Y-%m")
    usage = dict(state.get("usage") or {})
    return usage if usage.get("month") == month else {"month": month, "reads": 0}


def snowflake_time(tweet_id: str) -> datetime:
    """When a post was created, read from its id (X ids are Snowflakes: milliseconds << 22)."""
    return datetime.fromtimestamp(((int(tweet_id) >> 22) + 1288834974657) / 1000, UTC)


def to_posts(response: Any) -> list[Post]:
    users = {str(user.id): user for user in (response.includes or {}).get("users", [])}
    return each_post("x", response.data or [], lambda tweet: to_post(tweet, users))


def to_post(tweet: Any, users: dict[str, Any]) -> Post:
    author = users.get(str(tweet.author_id))
    username = author.username if author else str(tweet.author_id)
    replied = users.get(str(tweet.in_reply_to_user_id)) if tweet.in_reply_to_user_id else None
    references = [{"type": ref.type, "id": str(ref.id)} for ref in tweet.referenced_tweets or []]
    # A post without created_at failed every poll; its id says when it was posted, to the millisecond.
    created = tweet.created_at or snowflake_time(str(tweet.id))
    return Post(
        source="x",
        external_id=original_id(tweet),
        url=f"https://x.com/{username}/status/{tweet.id}",
        author=f"@{username}",
        author_id=str(tweet.author_id) if tweet.author_id else None,
        created_at=created.astimezone(UTC),
        text=full_text(tweet),
        lang=tweet.lang,
        conversation_id=str(tweet.conversation_id) if tweet.conversation_id else None,
        in_reply_to=f"@{replied.username}" if replied else None,
        extra={"referenced_tweets": references} if references else {},
    )


def original_id(tweet: Any) -> str:
    """The id of the post's first version, shared by all its edits (the URL keeps the one read).

    ``edit_history_tweet_ids`` lists the chain oldest first; posts from before edits existed
    (September 2022) come without it.
    """
    history = getattr(tweet, "edit_history_tweet_ids", None) or [tweet.id]
    return str(history[0])


def full_text(tweet: Any) -> str:
    """The whole post: ``text`` holds only the first 280 characters of a longer one (a null
    ``text`` is no text, not the word "None")."""
    note = tweet.data.get("note_tweet") or {}
    return str(note.get("text") or tweet.text or "")


def classify_error(exc: Exception) -> SourceError:
    if isinstance(exc, tweepy.TooManyRequests) and (capped := usage_cap(exc, datetime.now(UTC))):
        return capped
    if isinstance(exc, tweepy.TooManyRequests):
        reset = reset_time(exc.reset_time) or datetime.now(UTC) + timedelta(minutes=15)
        return SourceError(f"X rate limit reached; resets at {reset:%H:%M} UTC", retry_after=reset)
    if isinstance(exc, tweepy.Unauthorized | tweepy.Forbidden):
        detail = "; ".join(exc.api_messages) or str(exc)
        return SourceError(f"X refused the bearer token: {detail}", permanent=True)
    if isinstance(exc, tweepy.BadRequest):
        return SourceError(f"X rejected the search: {'; '.join(exc.api_messages) or exc}", permanent=True)
    if isinstance(exc, tweepy.TwitterServerError | requests.RequestException | ValueError):
        return SourceError(f"X search failed: {describe(exc)}")
    return SourceError(f"X search failed unexpectedly: {type(exc).__name__}: {exc}")


def usage_cap(exc: tweepy.TooManyRequests, now: datetime) -> SourceError | None:
    """X's monthly usage cap, if that is what this 429 is.

    X answers 429 both for a 15-minute rate limit and for the project's monthly usage cap; the
    cap's body is ``{"title": "UsageCapExceeded", "period": "Monthly", "scope": "Product",
    "detail": "Usage cap exceeded: Monthly product cap", ...}`` while its rate-limit headers still
    show requests left. Waiting for the rate-limit reset would only hit it again every poll, so
    reading stops until the cap renews, the first day of next month (UTC), as for the read budget;
    permanent, so that the operator is told at once.
    """
    try:
        body = exc.response.json()
    except ValueError:
        return None
    if (
        not isinstance(body, dict)
        or body.get("title") != "UsageCapExceeded"
        or body.get("period") != "Monthly"
    ):
        return None
    resume = next_month(now)
    return SourceError(
        f"X's monthly usage cap is spent ({body.get('detail') or 'UsageCapExceeded'}); reading stops "
        f"until {resume:%d %B %Y} 00:00 UTC. Raise the cap in the X developer portal to resume sooner.",
        permanent=True,
        retry_after=resume,
    )


def next_month(now: datetime) -> datetime:
    """Midnight UTC on the first day of the month after ``now``."""
    return datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC)
