"""Configuration changes announced to every worker through Redis pub/sub.

A worker that commits an admin change publishes the company id; every other worker drops
that company's cached ping configuration when the message arrives (milliseconds later), so
no worker reads configuration from the database on its pings, yet none serves a stale one
for long. Pub/sub delivers at most once: a worker that was disconnected may have missed
messages, so every (re)subscription drops the whole cache.

On a Redis Cluster the channel is a sharded one (SPUBLISH/SSUBSCRIBE, channel `cb:config`):
it lives on the master owning its slot, so one announcement costs that master alone. When
that master fails, the subscription breaks; the reconnect loop subscribes again, on the
replica promoted in its place, and drops the whole cache as after any reconnection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import uuid4

from redis.asyncio.cluster import ClusterPubSub, RedisCluster

from callbid.adapters.outage import is_outage
from callbid.hotstate.cluster import RedisClient

log = logging.getLogger(__name__)

POLL_SECONDS = 0.25
RECONNECT_MAX_SECONDS = 2.0

#: Called with a company id, or None for "everything may have changed".
Invalidate = Callable[[int | None], None]


#: `get_message` or, on a cluster, `get_sharded_message`.
NextMessage = Callable[..., Awaitable[dict[str, Any] | None]]


def _channel(client: RedisClient) -> str:
    """Pub/sub channels span a server's numbered databases and a deployment is one database,
    so the channel names it; a cluster has only database 0."""
    if isinstance(client, RedisCluster):
        return "cb:config"
    return f"cb:config:{client.connection_pool.connection_kwargs.get('db', 0)}"


class RedisConfigBus:
    """Publishes this worker's changes and applies everyone else's to `invalidate`."""

    def __init__(
        self,
        client: RedisClient,
        invalidate: Invalidate,
        on_subscribed: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        """`on_subscribed` runs after each (re)subscription: Redis may have restarted."""
        self._client = client
        self._invalidate = invalidate
        self._on_subscribed = on_subscribed
        self.channel = _channel(client)
        self.origin = f"{os.getpid()}-{uuid4().hex[:8]}"
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.subscribed = asyncio.Event()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._listen(), name="config-bus")

    async def stop(self) -> None:
        # redis-py's get_message may swallow a cancellation that meets its own timeout;
        # the flag ends the loop within one poll all the same.
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def publish(self, company_id: int) -> None:
        """Tell the other workers; a failure is logged, not raised: the change is committed,
        and a worker cut off from Redis drops its whole cache when it reconnects."""
        try:
            message = f"{company_id} {self.origin}"
            if isinstance(self._client, RedisCluster):
                await self._client.spublish(self.channel, message)
            else:
                await self._client.publish(self.channel, message)
        except Exception as exc:
            if not is_outage(exc):
                raise
            log.warning("could not announce a change of company %d: %r", company_id, exc)

    async def _listen(self) -> None:
        delay = 0.1
        while not self._stopping:
            pubsub = self._client.pubsub()
            try:
                if isinstance(pubsub, ClusterPubSub):
                    # A command on the channel's slot first: after a failover it finds the
                    # new owner (the pub/sub connection alone keeps asking the dead one).
                    await self._client.exists(self.channel)
                    await pubsub.ssubscribe(self.channel)
                    await self._receive(pubsub.get_sharded_message)
                else:
                    await pubsub.subscribe(self.channel)
                    await self._receive(pubsub.get_message)
            except Exception as exc:
                if not is_outage(exc):
                    log.exception("configuration bus failed; resubscribing")
                else:
                    log.warning("configuration bus lost Redis (%r); resubscribing", exc)
            finally:
                if self.subscribed.is_set():
                    delay = 0.1
                self.subscribed.clear()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_SECONDS)

    async def _receive(self, next_message: NextMessage) -> None:
        while not self._stopping:
            message = await next_message(timeout=POLL_SECONDS)
            if message is None:
                continue
            if message["type"] in ("subscribe", "ssubscribe"):
                self._invalidate(None)  # whatever was announced while away is unknown
                if self._on_subscribed is not None:
                    await self._on_subscribed()
                self.subscribed.set()
            elif message["type"] in ("message", "smessage"):
                self._apply(message["data"])

    def _apply(self, data: bytes) -> None:
        company, _, origin = data.decode("ascii", "replace").partition(" ")
        if origin == self.origin:
            return
        try:
            self._invalidate(int(company))
        except ValueError:
            log.warning("ignored a malformed configuration message %r", data[:80])
