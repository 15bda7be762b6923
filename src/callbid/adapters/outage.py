"""Which exceptions mean "a backing service is down", as opposed to a bug or bad input."""

from __future__ import annotations

import logging
import time

from asyncpg.exceptions import (
    ConnectionDoesNotExistError,
    OperatorInterventionError,
    PostgresConnectionError,
)
from redis.exceptions import (
    ClusterError,
    ReadOnlyError,
    RedisClusterUnreachableError,
    RedisError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from callbid.domain.errors import Unavailable


class NotReplicated(RedisError):
    """Redis made a write, but fewer replicas than `CALLBID_REDIS_REPLICAS_ACK` confirmed it
    in time: a failover now could lose it, so it is not acknowledged (the caller retries,
    and every script answers a retry with what it stored the first time)."""


OUTAGES = (
    OSError,
    TimeoutError,
    OperationalError,
    InterfaceError,
    RedisConnectionError,  # includes BusyLoadingError: Redis is still loading its data
    RedisTimeoutError,
    # Redis Cluster: TRYAGAIN (a slot being moved; see redis_wire.script_keys), CLUSTERDOWN
    # and MASTERDOWN (a master failing over), a slot no master serves yet, no node reachable,
    # and "TTL exhausted" (redirections that did not settle in time):
    TryAgainError,
    ClusterError,  # includes ClusterDownError and MasterDownError
    SlotNotCoveredError,
    RedisClusterUnreachableError,
    # A failover under way: MasterNotFoundError (the sentinels see no master) is a
    # ConnectionError above; a demoted master refuses writes; a replica cut off from its
    # master refuses everything (MASTERDOWN, a ClusterError above); a write was not confirmed
    # by enough replicas.
    ReadOnlyError,
    NotReplicated,
    # Raised by asyncpg itself on the writer's direct connection (no SQLAlchemy wrapping):
    PostgresConnectionError,  # SQLSTATE class 08: connection failures
    ConnectionDoesNotExistError,  # the connection was lost mid-transaction
    OperatorInterventionError,  # SQLSTATE class 57: shutting down, starting up
)


def is_outage(exc: BaseException) -> bool:
    """True when PostgreSQL, SQLite or Redis itself failed (unreachable, restarting, timed out,
    locked): the request may succeed if retried shortly, so it is answered 503, not 500."""
    if isinstance(exc, OUTAGES):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def storage_unavailable() -> Unavailable:
    """The refusal a request gets while the database cannot be reached (503, Retry-After)."""
    return Unavailable("FAILED storage unavailable, retry shortly")


class OutageLog:
    """Logs an outage once per `every` seconds per service, with the count it skipped: a
    down Redis under load must not write thousands of lines a second."""

    def __init__(self, logger: logging.Logger, every: float = 5.0) -> None:
        self._logger = logger
        self._every = every
        self._next: dict[str, float] = {}
        self._skipped: dict[str, int] = {}

    def __call__(self, service: str, exc: BaseException) -> None:
        now = time.monotonic()
        if now < self._next.get(service, 0.0):
            self._skipped[service] = self._skipped.get(service, 0) + 1
            return
        skipped = self._skipped.pop(service, 0)
        self._next[service] = now + self._every
        more = f" (and {skipped} more since the last report)" if skipped else ""
        self._logger.warning("%s unavailable: %r%s", service, exc, more)
