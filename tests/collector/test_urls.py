from __future__ import annotations

import pytest

from collector.urls import canonical_url, unwrap_redirect

SAME = [
    # scheme, host case, www, default port, fragment, trailing slash
    ("HTTP://WWW.LeedsNews.example:80/News/Story/#comments", "https://leedsnews.example/News/Story"),
    ("https://leedsnews.example/story#:~:text=Dr%201", "https://leedsnews.example/story"),
    # a fragment with a number names one item on the page: a comment is not the article
    ("https://blog.example/post/#comment-101", "https://blog.example/post#comment-101"),
    ("https://blog.example/post/#comment-102", "https://blog.example/post#comment-102"),
    ("https://leedsnews.example:443/news/story", "https://leedsnews.example/news/story"),
    # tracking parameters go, real ones stay (sorted)
    (
        "https://leedsnews.example/story?utm_source=tw&utm_medium=social&id=7&fbclid=abc&a=1",
        "https://leedsnews.example/story?a=1&id=7",
    ),
    ("https://leedsnews.example/story?gclid=1&mc_cid=2&_ga=3&igshid=4", "https://leedsnews.example/story"),
    # percent-escapes: case normalised, unreserved characters decoded
    ("https://leedsnews.example/a%7eb/%e2%82%ac", "https://leedsnews.example/a~b/%E2%82%AC"),
    ("https://leedsnews.example//double//slash", "https://leedsnews.example/double/slash"),
    # X: every host and user name variant of one post
    ("https://twitter.com/someone/status/1861234567890123456", "https://x.com/i/status/1861234567890123456"),
    (
        "https://mobile.twitter.com/Other/status/1861234567890123456?s=20&t=abc",
        "https://x.com/i/status/1861234567890123456",
    ),
    (
        "http://www.x.com/someone/status/1861234567890123456/photo/1",
        "https://x.com/i/status/1861234567890123456",
    ),
    ("https://x.com/i/web/status/1861234567890123456", "https://x.com/i/status/1861234567890123456"),
    ("https://mobile.twitter.com/AliceRoadGP", "https://x.com/AliceRoadGP"),
    # Reddit: hosts, slugs and short links
    ("https://old.reddit.com/r/GPUK/comments/1h2abc/my_gp_was_awful/", "https://reddit.com/comments/1h2abc"),
    ("https://www.reddit.com/r/gpuk/comments/1H2ABC/", "https://reddit.com/comments/1h2abc"),
    ("https://redd.it/1h2abc", "https://reddit.com/comments/1h2abc"),
    (
        "https://np.reddit.com/r/GPUK/comments/1h2abc/title/m9xyz12/?context=3",
        "https://reddit.com/comments/1h2abc/_/m9xyz12",
    ),
    # Google Alerts redirect: the real address inside
    (
        "https://www.google.com/url?rct=j&sa=t&url=https://www.leedsnews.example/story%3Futm_source%3Dalerts&ct=ga&cd=X&usg=Y",
        "https://leedsnews.example/story",
    ),
]


@pytest.mark.parametrize(("url", "canonical"), SAME)
def test_it_spells_each_variant_of_a_page_one_way(url: str, canonical: str) -> None:
    assert canonical_url(url) == canonical


@pytest.mark.parametrize(
    "url",
    [
        "",
        None,
        "mailto:gp@example.com",
        "javascript:alert(1)",
        "ftp://example.com/x",
        "not a url",
        "https://",
    ],
)
def test_what_is_not_a_web_address_has_no_canonical_form(url: str | None) -> None:
    assert canonical_url(url) is None


def test_different_pages_stay_different() -> None:
    pages = [
        "https://leedsnews.example/story?id=7",
        "https://leedsnews.example/story?id=8",
        "https://leedsnews.example/Story?id=7",
        "https://x.com/i/status/1",
        "https://x.com/i/status/2",
        "https://reddit.com/comments/abc",
        "https://reddit.com/comments/abc/_/def",
        "https://leedsnews.example:8080/story?id=7",
    ]
    assert len({canonical_url(page) for page in pages}) == len(pages)


def test_a_url_too_long_to_index_has_no_canonical_form() -> None:
    assert canonical_url("https://example.com/" + "a" * 3000) is None


def test_google_redirects_are_unwrapped_and_other_links_left_alone() -> None:
    wrapped = "https://www.google.com/url?rct=j&sa=t&url=https://bbc.example/news/1&ct=ga"
    assert unwrap_redirect(wrapped) == "https://bbc.example/news/1"
    assert unwrap_redirect("https://bbc.example/news/1") == "https://bbc.example/news/1"
    assert unwrap_redirect("https://www.google.com/url?url=javascript:alert(1)").startswith(
        "https://www.google"
    )
