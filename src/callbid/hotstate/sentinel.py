"""Redis behind Sentinel: `redis+sentinel://` URLs and a client that follows the master.

    redis+sentinel://[user:password@]host:port[,host:port...]/<master-name>[/<db>]

The hosts are the sentinels (port 26379 when left out); the credentials are the master's.
Each new connection asks the sentinels where the master is, so after a failover the client
finds the promoted replica by itself: connections to the old master break (or answer
READONLY once it is demoted) and the next ones go to the new one.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from urllib.parse import unquote

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.exceptions import RedisError

from callbid.hotstate.pool import pool_options

SENTINEL_SCHEME = "redis+sentinel"
DEFAULT_SENTINEL_PORT = 26379


@dataclass(frozen=True)
class SentinelTarget:
    """Where the sentinels are and which master (and database) of theirs to use."""

    sentinels: tuple[tuple[str, int], ...]
    master: str
    db: int = 0
    username: str | None = None
    password: str | None = None


def parse_sentinel_url(url: str) -> SentinelTarget:
    """The parts of a `redis+sentinel://` URL; a ValueError naming the first thing wrong."""
    scheme, _, rest = url.partition("://")
    if scheme != SENTINEL_SCHEME:
        raise ValueError(f"a Sentinel URL starts with {SENTINEL_SCHEME}://, not {scheme}://")
    if "?" in rest or "#" in rest:
        raise ValueError("a Sentinel URL takes no query or fragment (?…, #…)")
    netloc, _, path = rest.partition("/")
    credentials, _, hosts = netloc.rpartition("@")
    username, password = _credentials(credentials)
    sentinels = tuple(_sentinel_address(host) for host in hosts.split(","))
    master, db = _master_and_db(path)
    return SentinelTarget(sentinels, master, db, username, password)


def _credentials(text: str) -> tuple[str | None, str | None]:
    if not text:
        return None, None
    user, colon, password = text.partition(":")
    if not colon:  # like redis://secret@host: a lone word is the password
        return None, unquote(user)
    return unquote(user) or None, unquote(password)


def _sentinel_address(text: str) -> tuple[str, int]:
    if text.startswith("["):  # [::1]:26379
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"sentinel address {text!r}: unclosed IPv6 bracket")
        port = rest[1:]
    else:
        host, _, port = text.partition(":")
    if not host:
        raise ValueError(f"sentinel address {text!r} has no host (host:port, comma-separated)")
    if not port:
        return host, DEFAULT_SENTINEL_PORT
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"sentinel address {text!r}: port must be a number from 1 to 65535")
    return host, int(port)


def _master_and_db(path: str) -> tuple[str, int]:
    master, _, db = path.strip("/").partition("/")
    if not master:
        raise ValueError("a Sentinel URL names its master: redis+sentinel://host:port/<master>")
    if not db:
        return unquote(master), 0
    if not db.isdigit():
        raise ValueError(f"database {db!r} after the master name must be a number (…/mymaster/0)")
    return unquote(master), int(db)


class BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """A pool on the master Sentinel names that waits for a free connection when all are in
    use, as the plain path's `BlockingConnectionPool` does (redis-py's own Sentinel pool
    raises instead, so a burst of pings would answer errors). The method order puts the
    Sentinel pool's master look-up and connection class over the blocking pool's checkout
    and release, which call the same `ConnectionPool` internals underneath."""

    async def aclose(self) -> None:
        await super().aclose()
        # The sentinel clients belong to this pool alone (see connect_sentinel).
        await self.sentinel_manager.aclose()


def connect_sentinel(url: str, *, timeout: float, pool_size: int) -> Redis:
    """A client on the master the sentinels of `url` name, on a bounded pool with the same
    waits, timeouts and single retry as a plain Redis (see `connect_redis`). The sentinels are
    asked with the same timeout; closing the client closes them too."""
    target = parse_sentinel_url(url)
    sentinels = Sentinel(
        target.sentinels,
        sentinel_kwargs={"socket_timeout": timeout, "socket_connect_timeout": timeout},
    )
    client: Redis = sentinels.master_for(
        target.master,
        connection_pool_class=BlockingSentinelPool,
        max_connections=pool_size,
        db=target.db,
        username=target.username,
        password=target.password,
        **pool_options(timeout),
    )
    return client


async def follow_master(client: Redis) -> None:
    """On a Sentinel client, ask the sentinels where the master is now and drop pooled
    connections to another one (redis-py asks only when it opens a connection): called when
    a write went unconfirmed, since a master whose replicas left it for a promoted one keeps
    taking writes until the sentinels demote it, seconds later. Does nothing otherwise."""
    pool = client.connection_pool
    if isinstance(pool, SentinelConnectionPool):
        with contextlib.suppress(RedisError):  # no master named yet: the next call asks again
            await pool.get_master_address()  # type: ignore[no-untyped-call]  # redis-py
