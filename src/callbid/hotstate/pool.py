"""How every Redis client of callbid waits, times out and retries, whatever the deployment."""

from __future__ import annotations

from typing import Any

from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

POOL_WAIT_SECONDS = 10.0


def pool_options(timeout: float) -> dict[str, Any]:
    """Keyword arguments of a blocking connection pool: a burst queues for a connection up to
    `POOL_WAIT_SECONDS`, while a down Redis fails fast (`timeout` on connect and on each
    reply), and a call retries once on a fresh connection, so that a pooled connection broken
    by a restart or a failover costs no request. Every script is safe to retry."""
    return {
        "timeout": POOL_WAIT_SECONDS,
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(NoBackoff(), 1),
        "health_check_interval": 30,
    }
