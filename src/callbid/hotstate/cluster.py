"""Redis Cluster as the hot state: `redis+cluster://` URLs and the cluster client they make.

`CALLBID_REDIS_URL=redis+cluster://[user:password@]host:port[,host:port...]` names startup
nodes; the client discovers the rest (and every later change of topology) from them. Every
key of a company shares its hash tag, so each script runs on the one master owning that
company's slot, and the scripts declare two keys (`script_keys`) so that none of them ever
runs over half of a slot being moved (see `callbid.hotstate.redis_wire.script_keys`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, ClusterPipeline, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

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


class QueueingCluster(RedisCluster):
    """redis-py's cluster client, whose connections to a node are capped but not queued for
    (past the cap a call fails at once), with the queue the one-server pool has: at most
    `calls` commands or pipelines are in flight at once, each holding at most one
    connection to a node, and the others wait for their turn, `timeout` seconds at most."""

    def __init__(self, *, calls: int, timeout: float, **options: Any) -> None:
        super().__init__(**options)
        self._turns = asyncio.Semaphore(calls)
        self._queue_timeout = timeout

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        async with self.turn():
            return await super().execute_command(*args, **kwargs)

    def pipeline(self, transaction: Any = None, shard_hint: Any = None) -> ClusterPipeline:
        if shard_hint:  # refused by the parent, which says why
            return super().pipeline(transaction, shard_hint)
        return _QueuedPipeline(self, transaction)  # type: ignore[abstract]  # as redis-py does

    def turn(self) -> _Turn:
        return _Turn(self._turns, self._queue_timeout)


class _Turn:
    """One of a `QueueingCluster`'s turns, waited for at most `timeout` seconds: then a
    ConnectionError, as the one-server pool raises when none of its connections came free."""

    def __init__(self, turns: asyncio.Semaphore, timeout: float) -> None:
        self._turns, self._timeout = turns, timeout

    async def __aenter__(self) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                await self._turns.acquire()
        except TimeoutError:
            raise RedisConnectionError(
                f"no cluster connection came free within {self._timeout} s"
            ) from None

    async def __aexit__(self, *exc: object) -> None:
        self._turns.release()


class _QueuedPipeline(ClusterPipeline):
    """A pipeline of a `QueueingCluster`: its execution takes one turn, however many masters
    its commands go to (one connection each)."""

    _queue: QueueingCluster

    def __init__(self, client: QueueingCluster, transaction: Any = None) -> None:
        super().__init__(client, transaction)
        self._queue = client

    async def execute(
        self, raise_on_error: bool = True, allow_redirections: bool = True
    ) -> list[Any]:
        async with self._queue.turn():
            return await super().execute(raise_on_error, allow_redirections)


def connect_cluster(url: str, *, timeout: float, pool_size: int) -> RedisCluster:
    """A cluster client (hiredis parses replies) that follows MOVED and ASK, retries TRYAGAIN
    for a moment and refreshes its map of slots when a master fails. Like `connect_redis`'s
    pool, at most `pool_size` calls are in flight and a burst beyond queues (a call or
    pipeline holds one connection per node it reaches; one more per node is left for the
    configuration bus's subscription); every call gives up after `timeout` seconds and is
    retried once on a fresh connection."""
    address = parse_cluster_url(url)
    return QueueingCluster(
        calls=pool_size,
        timeout=timeout,
        startup_nodes=[ClusterNode(host, port) for host, port in address.nodes],
        username=address.username,
        password=address.password,
        max_connections=pool_size + 1,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 1),
        health_check_interval=30,
    )
