"""Redis Cluster as the hot state: `redis+cluster://` URLs and the cluster client they make.

`CALLBID_REDIS_URL=redis+cluster://[user:password@]host:port[,host:port...]` names startup
nodes; the client discovers the rest (and every later change of topology) from them.
`rediss+cluster://...[?ssl_ca_certs=...]` is the same over TLS. Every
key of a company shares its hash tag, so each script runs on the one master owning that
company's slot, and the scripts declare two keys (`script_keys`) so that none of them ever
runs over half of a slot being moved (see `callbid.hotstate.redis_wire.script_keys`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, ClusterPipeline, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

#: Whatever `connect_redis` returns: one server or a cluster; both run the same scripts.
RedisClient = Redis | RedisCluster

CLUSTER_SCHEME = "redis+cluster"
TLS_CLUSTER_SCHEME = "rediss+cluster"  # every node over TLS
CLUSTER_SCHEMES = (CLUSTER_SCHEME, TLS_CLUSTER_SCHEME)
#: The options a `rediss+cluster://` URL takes, named as on a `rediss://` URL; each value
#: is a file's path but `ssl_cert_reqs` (how the nodes' certificates are checked).
TLS_OPTIONS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs")
CERT_REQS = ("required", "optional", "none")


@dataclass(frozen=True)
class ClusterAddress:
    """What a cluster URL says: startup nodes, the credentials for every node, and whether
    (with which certificates) every connection is TLS."""

    nodes: tuple[tuple[str, int], ...]
    username: str | None = None
    password: str | None = None
    tls: bool = False
    tls_options: tuple[tuple[str, str], ...] = ()


def is_cluster_url(url: str) -> bool:
    return url.split("://", 1)[0].lower() in CLUSTER_SCHEMES


def parse_cluster_url(url: str) -> ClusterAddress:
    """The startup nodes, credentials and TLS options of `url`; raises ValueError naming what
    is wrong (another scheme, no node, a node without a valid port, a database number, an
    option a cluster does not take)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in CLUSTER_SCHEMES:
        raise ValueError(
            f"a cluster URL starts with {CLUSTER_SCHEME}:// or {TLS_CLUSTER_SCHEME}://, "
            f"not {url[:20]!r}"
        )
    tls = scheme.lower() == TLS_CLUSTER_SCHEME
    rest, _, query = rest.partition("?")
    if "#" in rest or "#" in query:
        raise ValueError("a cluster URL has no #fragment")
    userinfo, at, hosts = rest.rpartition("@")
    if not at:
        userinfo, hosts = "", rest
    hosts, slash, path = hosts.partition("/")
    if slash and path:
        raise ValueError(
            f"a cluster has only database 0: drop /{path} from the URL (keys share slots, "
            "not databases)"
        )
    nodes = tuple(_parse_node(node) for node in hosts.split(","))
    username, _, password = userinfo.partition(":")
    return ClusterAddress(
        nodes,
        unquote(username) or None,
        unquote(password) if password else None,
        tls,
        _tls_options(query, tls),
    )


def _tls_options(query: str, tls: bool) -> tuple[tuple[str, str], ...]:
    options = parse_qsl(query, keep_blank_values=True, strict_parsing=False)
    if options and not tls:
        raise ValueError(
            f"a {CLUSTER_SCHEME}:// URL takes no options; TLS options "
            f"({', '.join(TLS_OPTIONS)}) go with {TLS_CLUSTER_SCHEME}://"
        )
    for name, value in options:
        if name not in TLS_OPTIONS:
            raise ValueError(
                f"a cluster URL takes no option {name!r}; it takes {', '.join(TLS_OPTIONS)}"
            )
        if name == "ssl_cert_reqs" and value not in CERT_REQS:
            raise ValueError(f"ssl_cert_reqs is one of {', '.join(CERT_REQS)}, not {value!r}")
        if not value:
            raise ValueError(f"the cluster URL's option {name} has no value")
    return tuple(options)


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
        ssl=address.tls,
        **dict(address.tls_options),
        max_connections=pool_size + 1,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 1),
        health_check_interval=30,
    )
