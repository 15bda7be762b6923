"""Redis Cluster as the hot state: `redis+cluster://` URLs and the cluster client they make.

`CALLBID_REDIS_URL=redis+cluster://[user:password@]host:port[,host:port...]` names startup
nodes; the client discovers the rest (and every later change of topology) from them. Every
key of a company shares its hash tag, so each script runs on the one master owning that
company's slot, and the scripts declare two keys (`script_keys`) so that none of them ever
runs over half of a slot being moved (see `callbid.hotstate.redis_wire.script_keys`).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

#: Whatever `connect_redis` returns: one server or a cluster; both run the same scripts.
RedisClient = Redis | RedisCluster

CLUSTER_SCHEME = "redis+cluster"


@dataclass(frozen=True)
class ClusterAddress:
    """What a `redis+cluster://` URL says: startup nodes and the credentials for every node."""

    nodes: tuple[tuple[str, int], ...]
    username: str | None = None
    password: str | None = None


def is_cluster_url(url: str) -> bool:
    return url.split("://", 1)[0].lower() == CLUSTER_SCHEME


def parse_cluster_url(url: str) -> ClusterAddress:
    """The startup nodes and credentials of `url`; raises ValueError naming what is wrong
    (another scheme, no node, a node without a valid port, a database number, options)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() != CLUSTER_SCHEME:
        raise ValueError(f"a cluster URL starts with {CLUSTER_SCHEME}://, not {url[:20]!r}")
    userinfo, at, hosts = rest.rpartition("@")
    if not at:
        userinfo, hosts = "", rest
    if "?" in hosts or "#" in hosts:
        raise ValueError("a cluster URL takes no options (?...)")
    hosts, slash, path = hosts.partition("/")
    if slash and path:
        raise ValueError(
            f"a cluster has only database 0: drop /{path} from the URL (keys share slots, "
            "not databases)"
        )
    nodes = tuple(_parse_node(node) for node in hosts.split(","))
    username, _, password = userinfo.partition(":")
    return ClusterAddress(nodes, unquote(username) or None, unquote(password) if password else None)


def _parse_node(node: str) -> tuple[str, int]:
    if not node.strip():
        raise ValueError("a cluster URL lists host:port of one node or more, comma-separated")
    try:
        parsed = urlsplit(f"//{node}")
        port = parsed.port
    except ValueError:
        port = None
        parsed = None
    if parsed is None or not parsed.hostname or port is None or port == 0:
        raise ValueError(f"cluster node {node!r} is not host:port with a port from 1 to 65535")
    return parsed.hostname, port


def connect_cluster(url: str, *, timeout: float, pool_size: int) -> RedisCluster:
    """A cluster client (hiredis parses replies) that follows MOVED and ASK, retries TRYAGAIN
    for a moment and refreshes its map of slots when a master fails. `pool_size` bounds the
    connections to each node; like `connect_redis`, every call gives up after `timeout`
    seconds and is retried once on a fresh connection."""
    address = parse_cluster_url(url)
    return RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in address.nodes],
        username=address.username,
        password=address.password,
        max_connections=pool_size,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 1),
        health_check_interval=30,
    )
