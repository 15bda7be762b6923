"""Configuration changes announced to every worker through Redis pub/sub.

A worker that commits an admin change publishes the company id; every other worker drops
that company's cached ping configuration when the message arrives (milliseconds later), so
no worker reads configuration from the database on its pings, yet none serves a stale one
for long. Pub/sub delivers at most once: a worker that was disconnected may have missed
messages, so every (re)subscription drops the whole cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from uuid import uuid4

from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from callbid.adapters.outage import is_outage

log = logging.getLogger(__name__)

POLL_SECONDS = 0.25
RECONNECT_MAX_SECONDS = 2.0

#: Called with a company id, or None for "everything may have changed".
Invalidate = Callable[[int | None], None]


class RedisConfigBus:
    """Publishes this worker's changes and applies everyone else's to `invalidate`."""

    def __init__(
        self,
        client: Redis,
        invalidate: Invalidate,
        on_subscribed: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        """`on_subscribed` runs after each (re)subscription: Redis may have restarted."""
        self._client = client
        self._invalidate = invalidate
        self._on_subscribed = on_subscribed
        # Pub/sub channels span Redis's numbered databases; a deployment is one database.
        self.channel = f"cb:config:{client.connection_pool.connection_kwargs.get('db', 0)}"
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
            await self._client.publish(self.channel, f"{company_id} {self.origin}")
        except Exception as exc:
            if not is_outage(exc):
                raise
            log.warning("could not announce a change of company %d: %r", company_id, exc)

    async def _listen(self) -> None:
        delay = 0.1
        while not self._stopping:
            pubsub = self._client.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                await self._receive(pubsub)
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

    async def _receive(self, pubsub: PubSub) -> None:
        while not self._stopping:
            message = await pubsub.get_message(timeout=POLL_SECONDS)
            if message is None:
                continue
            if message["type"] == "subscribe":
                self._invalidate(None)  # whatever was announced while away is unknown
                if self._on_subscribed is not None:
                    await self._on_subscribed()
                self.subscribed.set()
            elif message["type"] == "message":
                self._apply(message["data"])

    def _apply(self, data: bytes) -> None:
        company, _, origin = data.decode("ascii", "replace").partition(" ")
        if origin == self.origin:
            return
        try:
            self._invalidate(int(company))
        except ValueError:
            log.warning("ignored a malformed configuration message %r", data[:80])
