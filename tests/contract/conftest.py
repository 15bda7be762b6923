"""Fixtures of the hot-state contract suite: every `HotState` store runs the very same tests.

A store plugs in at one place, `STORE_FACTORIES`: a name and a factory returning an async
context manager that yields a fresh, usable store and closes it on exit. Each test works in
its own namespace (`ns`), so stores backed by a shared server never see each other's keys.

The Redis store runs against database 15 of `CALLBID_TEST_REDIS_URL`, which it empties. The
cluster store runs on the session's local 3-master Redis Cluster (`redis_cluster`), where each
test's namespace lands on whichever master owns its slot. The Sentinel store runs on the
session's own Sentinel-managed primary (`redis_sentinel`), every write confirmed by a replica
(`WAIT 1`), as `CALLBID_REDIS_REPLICAS_ACK=1` deploys it.

Factories are called on the event loop that will drive the store: the `store` fixture on the
test's loop, the property tests on a loop of their own (see `store_factory`).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any
from uuid import uuid4

import pytest
from redis.asyncio import Redis

from callbid.hotstate.memory import MemoryHotState
from callbid.hotstate.protocol import HotState
from callbid.hotstate.redis import RedisHotState, connect_redis
from tests.support.redis_cluster import LocalCluster
from tests.support.redis_sentinel import RedisSentinel

StoreFactory = Callable[[], AbstractAsyncContextManager[HotState]]


@asynccontextmanager
async def memory_store() -> AsyncIterator[HotState]:
    store = MemoryHotState()
    try:
        yield store
    finally:
        await store.close()


@asynccontextmanager
async def redis_store() -> AsyncIterator[HotState]:
    url = os.environ.get("CALLBID_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    client = Redis.from_url(url)  # a dedicated test DB
    await client.flushdb()
    store = RedisHotState(client)
    try:
        yield store
    finally:
        await store.close()


def cluster_store(cluster: LocalCluster) -> StoreFactory:
    @asynccontextmanager
    async def store() -> AsyncIterator[HotState]:
        hot = RedisHotState(connect_redis(cluster.url, timeout=5.0, pool_size=32))
        try:
            yield hot
        finally:
            await hot.close()

    return store


def sentinel_store(deployment: RedisSentinel) -> StoreFactory:
    @asynccontextmanager
    async def store() -> AsyncIterator[HotState]:
        client = connect_redis(deployment.url, timeout=2.0, pool_size=8)
        await client.flushdb()
        hot = RedisHotState(client, replicas_ack=1, wait_ms=1000)
        try:
            yield hot
        finally:
            await hot.close()

    return store


# The single place where stores plug in: name -> factory, plus the marks its tests carry.
STORE_FACTORIES: dict[str, StoreFactory] = {
    "memory": memory_store,
    "redis": redis_store,
}
STORE_MARKS: dict[str, tuple[pytest.MarkDecorator, ...]] = {
    "redis": (pytest.mark.redis,),
    "cluster": (pytest.mark.cluster,),
    "sentinel": (pytest.mark.sentinel,),
}
#: Stores on a deployment a session fixture starts: name -> (fixture, factory on its value).
DEPLOYED_STORE_FACTORIES: dict[str, tuple[str, Callable[[Any], StoreFactory]]] = {
    "cluster": ("redis_cluster", cluster_store),
    "sentinel": ("redis_sentinel", sentinel_store),
}


def _store_params() -> list[object]:
    return [
        pytest.param(name, marks=STORE_MARKS.get(name, ()), id=name)
        for name in (*STORE_FACTORIES, *DEPLOYED_STORE_FACTORIES)
    ]


@pytest.fixture(params=_store_params())
def store_factory(request: pytest.FixtureRequest) -> StoreFactory:
    """The factory of the store under test, for tests that drive their own event loop."""
    if request.param in DEPLOYED_STORE_FACTORIES:
        fixture, on_deployment = DEPLOYED_STORE_FACTORIES[request.param]
        return on_deployment(request.getfixturevalue(fixture))
    factory: StoreFactory = STORE_FACTORIES[request.param]
    return factory


#: The state machines run this share of their examples on a deployed store (cluster,
#: Sentinel): the very scripts of the "redis" store, over another transport that the first
#: examples already cross, at two to four times the cost of each example.
DEPLOYED_EXAMPLES_SHARE = 1 / 3


@pytest.fixture
def examples(request: pytest.FixtureRequest) -> Callable[[int], int]:
    """How many examples a property test of the store under test runs, from its full count."""
    deployed = request.node.callspec.params.get("store_factory") in DEPLOYED_STORE_FACTORIES
    return lambda full: max(1, round(full * DEPLOYED_EXAMPLES_SHARE)) if deployed else full


@pytest.fixture
async def store(store_factory: StoreFactory) -> AsyncIterator[HotState]:
    """A fresh store of each registered kind, open for the test and closed after it."""
    async with store_factory() as hot:
        yield hot


def new_namespace() -> str:
    return f"test-{uuid4().hex}"


@pytest.fixture
def ns() -> str:
    """A namespace no other test uses."""
    return new_namespace()
