"""`redis+sentinel://` URLs: what they name, and the one-line message each mistake gets."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from callbid.hotstate.sentinel import SentinelTarget, parse_sentinel_url
from callbid.settings import Settings


@pytest.mark.parametrize(
    ("url", "target"),
    [
        (
            "redis+sentinel://s1:26380,s2:26381/mymaster/3",
            SentinelTarget((("s1", 26380), ("s2", 26381)), "mymaster", 3),
        ),
        ("redis+sentinel://s1/mymaster", SentinelTarget((("s1", 26379),), "mymaster", 0)),
        (
            "redis+sentinel://app:p%40ss@[::1]:5000/main/",
            SentinelTarget((("::1", 5000),), "main", 0, "app", "p@ss"),
        ),
        (
            "redis+sentinel://secret@s1:1/m",
            SentinelTarget((("s1", 1),), "m", 0, None, "secret"),
        ),
    ],
)
def test_a_sentinel_url_names_sentinels_master_db_and_credentials(
    url: str, target: SentinelTarget
) -> None:
    assert parse_sentinel_url(url) == target


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis+sentinel://s1:26379", "a Sentinel URL names its master"),
        ("redis+sentinel://s1:26379/", "a Sentinel URL names its master"),
        ("redis+sentinel://s1:port/m", "sentinel address 's1:port': port must be a number"),
        ("redis+sentinel://s1:0/m", "sentinel address 's1:0': port must be a number"),
        ("redis+sentinel://s1:1,/m", "sentinel address '' has no host"),
        ("redis+sentinel://[::1:1/m", "sentinel address '[::1:1': unclosed IPv6 bracket"),
        ("redis+sentinel://s1:1/m/zero", "database 'zero' after the master name must be a number"),
        ("redis+sentinel://s1:1/m/0?ssl=1", "a Sentinel URL takes no query"),
        ("redis://s1:1/m", "a Sentinel URL starts with redis+sentinel://, not redis://"),
    ],
)
def test_a_wrong_sentinel_url_says_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        parse_sentinel_url(url)


def test_settings_accept_sentinel_urls_and_refuse_junk_with_every_other_problem() -> None:
    url = "redis+sentinel://:pw@s1:26379,s2:26379/mymaster/0"
    assert Settings(redis_url=url, redis_replicas_ack=1).redis_url == url
    with pytest.raises(ValidationError) as refused:
        Settings(redis_url="redis+sentinel://:hunter2@s1:99999/m", redis_replicas_ack=-1)
    problems = {str(error["loc"][0]): error["msg"] for error in refused.value.errors()}
    assert problems == {
        "redis_url": "Value error, sentinel address 's1:99999': port must be a number from 1 "
        "to 65535",
        "redis_replicas_ack": "Input should be greater than or equal to 0",
    }
    with pytest.raises(ValidationError, match="scheme 'http': a Redis URL starts with one of"):
        Settings(redis_url="http://cache:6379/0")
