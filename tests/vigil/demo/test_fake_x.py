from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import tweepy

from collector.http import http_session
from vigil.demo.fake_x import FakeXServer, QueryError, Tweet, compile_query, snowflake
from vigil.settings import load_settings

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


def tweet(text: str, author: str = "someone", reply_to: str | None = None, minutes: int = 0) -> Tweet:
    moment = NOW - timedelta(minutes=minutes)
    return Tweet(snowflake(moment, minutes % 1000), text, author, moment, in_reply_to=reply_to)


@pytest.mark.parametrize(
    ("query", "text", "reply_to", "expected"),
    [
        ('"Dr Smith"', "Saw Dr. Smith today", None, True),
        ('"Dr Smith"', "Dr Smithson was great", None, False),
        ('"Dr Smith"', "Dr Smith's receptionist", None, True),
        ('"Dr Smith" Leeds', "Dr Smith in Leeds", None, True),
        ('"Dr Smith" Leeds', "Dr Smith in Exeter", None, False),
        ('"Dr Smith" (Leeds OR Meanwood)', "Dr Smith at Meanwood", None, True),
        ('"Harry Kane" -goal', "Harry Kane scores a goal", None, False),
        ('"Harry Kane" -goal', "Dr Harry Kane at Thorpe", None, True),
        ("@drdansmith", "thanks @drdansmith!", None, True),
        ("@drdansmith", "you are wrong", "drdansmith", True),
        ("@drdansmith", "you are wrong", "someoneelse", False),
        ('"Dr Pepper" -is:retweet', "Dr Pepper at Bedminster", None, True),
        ('("a b" OR c) d', "c d", None, True),
        ('("a b" OR c) d', "a b", None, False),
        ("x OR y z", "x", None, True),  # AND binds tighter than OR
    ],
)
def test_it_evaluates_queries_as_x_does(query: str, text: str, reply_to: str | None, expected: bool) -> None:
    assert compile_query(query)(tweet(text, reply_to=reply_to)) is expected


@pytest.mark.parametrize("query", ["(a OR b", "a)", "()"])
def test_it_refuses_malformed_queries(query: str) -> None:
    with pytest.raises(QueryError):
        compile_query(query)


def test_the_real_tweepy_client_pages_through_it() -> None:
    tweets = [tweet(f"Dr Smith in Leeds, post {i}", author=f"user{i}", minutes=i) for i in range(25)]
    tweets.append(tweet("nothing to see", minutes=99))
    with FakeXServer(tweets, "token") as server:
        client = tweepy.Client(bearer_token="token")
        client.session = http_session(load_settings(environ={}), ("https://api.twitter.com", server.base_url))
        pages = list(
            tweepy.Paginator(
                client.search_recent_tweets, '"Dr Smith" Leeds -is:retweet', max_results=10,
                tweet_fields=["created_at"], expansions=["author_id"],
            )
        )  # fmt: skip
    assert [len(page.data) for page in pages] == [10, 10, 5]
    first = pages[0]
    assert first.meta["newest_id"] == str(tweets[0].id)
    assert first.data[0].created_at == NOW
    assert {user.username for user in first.includes["users"]} == {f"user{i}" for i in range(10)}
    assert server.posts_served == 25


def test_each_author_keeps_their_own_username() -> None:
    tweets = [
        tweet("Dr Smith in Leeds", author=name, minutes=i)
        for i, name in enumerate(["leeds_lad", "leeds_club"])
    ]
    with FakeXServer(tweets, "token") as server:
        client = tweepy.Client(bearer_token="token")
        client.session = http_session(load_settings(environ={}), ("https://api.twitter.com", server.base_url))
        page = client.search_recent_tweets('"Dr Smith"', expansions=["author_id"])
    users = {user.id: user.username for user in page.includes["users"]}
    assert [users[post.author_id] for post in page.data] == ["leeds_lad", "leeds_club"]


def test_a_wrong_bearer_token_is_refused_as_x_does() -> None:
    with FakeXServer([], "token") as server:
        client = tweepy.Client(bearer_token="wrong")
        client.session = http_session(load_settings(environ={}), ("https://api.twitter.com", server.base_url))
        with pytest.raises(tweepy.Unauthorized):
            client.search_recent_tweets("anything")
