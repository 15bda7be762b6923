"""`redis+cluster://` and `rediss+cluster://` URLs: what they name, and what the settings
refuse with which message."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from callbid.hotstate.cluster import ClusterAddress, is_cluster_url, parse_cluster_url
from callbid.settings import Settings


def test_a_cluster_url_names_its_startup_nodes_and_credentials() -> None:
    url = "redis+cluster://us%40er:p%3Aw@10.0.0.1:7000,redis-b:7001,[::1]:7002"
    assert parse_cluster_url(url) == ClusterAddress(
        (("10.0.0.1", 7000), ("redis-b", 7001), ("::1", 7002)), "us@er", "p:w"
    )
    assert parse_cluster_url("REDIS+CLUSTER://h:1/") == ClusterAddress((("h", 1),))
    assert is_cluster_url("redis+cluster://h:1")
    assert not is_cluster_url("redis://h:1/0")


def test_a_tls_cluster_url_names_its_certificates() -> None:
    url = "rediss+cluster://:pw@a:7000,b:7000?ssl_ca_certs=/etc/ca.pem&ssl_cert_reqs=required"
    assert parse_cluster_url(url) == ClusterAddress(
        (("a", 7000), ("b", 7000)),
        None,
        "pw",
        tls=True,
        tls_options=(("ssl_ca_certs", "/etc/ca.pem"), ("ssl_cert_reqs", "required")),
    )
    assert parse_cluster_url("rediss+cluster://a:1") == ClusterAddress((("a", 1),), tls=True)
    assert is_cluster_url("rediss+cluster://a:1")
    assert Settings(redis_url=url, store="redis").uses_redis


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis+cluster://h:7000/2", "a cluster has only database 0: drop /2"),
        ("redis+cluster://", "a cluster URL lists host:port of one node or more"),
        ("redis+cluster://a:1,,b:2", "a cluster URL lists host:port of one node or more"),
        ("redis+cluster://h", "cluster node 'h' is not host:port"),
        ("redis+cluster://h:0", "cluster node 'h:0' is not host:port"),
        ("redis+cluster://h:70000", "cluster node 'h:70000' is not host:port"),
        ("redis+cluster://h:7000?ssl=1", "a redis\\+cluster:// URL takes no options; TLS"),
        ("rediss+cluster://h:7000?db=2", "a cluster URL takes no option 'db'; it takes ssl_"),
        ("rediss+cluster://h:1?ssl_cert_reqs=yes", "ssl_cert_reqs is one of required, optional"),
        ("rediss+cluster://h:1?ssl_ca_certs=", "the cluster URL's option ssl_ca_certs has no"),
        ("rediss+cluster://h:1#x", "a cluster URL has no #fragment"),
    ],
)
def test_a_bad_cluster_url_is_refused_saying_why(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_cluster_url(url)
    with pytest.raises(ValidationError, match=f"redis_url\n  Value error, {message}"):
        Settings(redis_url=url)


def test_settings_take_redis_and_cluster_urls_and_refuse_others() -> None:
    for url in ("redis://h:6379/3", "rediss://h:6380/0", "unix:///run/redis.sock"):
        assert Settings(redis_url=url).redis_url == url
    assert Settings(redis_url="redis+cluster://a:1,b:2", store="redis").uses_redis
    with pytest.raises(ValidationError, match="scheme 'http': a Redis URL starts with one of"):
        Settings(redis_url="http://h:6379")
    with pytest.raises(ValidationError, match="no scheme: a Redis URL starts with one of"):
        Settings(redis_url="h:6379")
    assert Settings(redis_url="redis+cluster://a:1", redis_replicas_ack=1).redis_replicas_ack == 1
